
/*
 * Copyright (C) nginx-scripting-gate authors
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_CALLBACK_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_CALLBACK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_SCRIPTING_GATE_MAX_CALLBACK_URL   2048


/* a callback_allow prefix, as parsed at configuration time */
typedef struct {
    ngx_uint_t                            https;
    ngx_uint_t                            port;
    ngx_str_t                             host;     /* lower case */
    ngx_str_t                             path;     /* %-decoded */
} ngx_http_scripting_gate_callback_prefix_t;


char *ngx_http_scripting_gate_callback_prefix(ngx_pool_t *pool,
    ngx_str_t *text, ngx_http_scripting_gate_callback_prefix_t *prefix);
char *ngx_http_scripting_gate_callback_check(ngx_str_t *url,
    ngx_array_t *allow);


#endif /* _NGX_HTTP_SCRIPTING_GATE_CALLBACK_H_INCLUDED_ */
