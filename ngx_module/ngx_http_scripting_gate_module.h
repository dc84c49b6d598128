
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The gate module's own types: its configuration and a request's context,
 * shared by its files (module.c, json.c).
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_MODULE_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_MODULE_H_INCLUDED_


#include "ngx_http_scripting_gate.h"


typedef struct {
    ngx_array_t                        *gates;      /* ..._conf_t */
    ngx_uint_t                          status_code;
    ngx_flag_t                          dry_run;
    ngx_uint_t                          log_level;
    size_t                              json_max_size;
    size_t                              json_max_memory;
} ngx_http_scripting_gate_loc_conf_t;


typedef struct {
    ngx_array_t                         zones;      /* ngx_shm_zone_t * */
    ngx_array_t                         redis;      /* ..._redis_t */
    ngx_array_t                         json_vars;
} ngx_http_scripting_gate_main_conf_t;


/*
 * A request's dealings with the gate module; it lives in a pool cleanup,
 * so that it survives internal redirects and gives back what it holds
 * whichever way the request ends.
 */
typedef struct {
    ngx_http_scripting_gate_t           gate;
    ngx_http_request_t                 *request;
    void                               *json;       /* the json vars' values */
    unsigned                            body_waiting:1;
    unsigned                            body_ready:1;
    unsigned                            json_parsed:1;
} ngx_http_scripting_gate_ctx_t;


ngx_http_scripting_gate_ctx_t *ngx_http_scripting_gate_get_ctx(
    ngx_http_request_t *r, ngx_uint_t create);

/* json.c */
char *ngx_http_scripting_gate_json_var(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_SCRIPTING_GATE_MODULE_H_INCLUDED_ */
