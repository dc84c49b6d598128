
/*
 * Copyright (C) nginx-scripting-gate authors
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_UTIL_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* room for a key of NGX_HTTP_SCRIPTING_GATE_MAX_KEY bytes as it is */
#define NGX_HTTP_SCRIPTING_GATE_LOG_VALUE  1024


/* an outside value as a log line shows it, escaped, on the caller's stack */
typedef struct {
    ngx_str_t                             str;
    u_char                   data[NGX_HTTP_SCRIPTING_GATE_LOG_VALUE];
} ngx_http_scripting_gate_log_value_t;


/* util.c */
char *ngx_http_scripting_gate_conf_zone(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size);
ngx_int_t ngx_http_scripting_gate_request_id(ngx_http_request_t *r,
    ngx_str_t *id);
ngx_int_t ngx_http_scripting_gate_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);
ngx_int_t ngx_http_scripting_gate_add_header(ngx_http_request_t *r,
    char *name, ngx_str_t *value);
ngx_table_elt_t *ngx_http_scripting_gate_header_in(ngx_http_request_t *r,
    ngx_str_t *name);
ngx_int_t ngx_http_scripting_gate_retry_after_value(ngx_str_t *value,
    ngx_msec_t *ms);
ngx_int_t ngx_http_scripting_gate_utf8(ngx_pool_t *pool, ngx_str_t *s,
    ngx_uint_t key);
ngx_str_t *ngx_http_scripting_gate_log_value(
    ngx_http_scripting_gate_log_value_t *lv, u_char *data, size_t len);
ngx_int_t ngx_http_scripting_gate_event_watch(ngx_event_t *ev,
    ngx_uint_t want, ngx_uint_t event);
void ngx_http_scripting_gate_conn_forget(ngx_connection_t *c);

/* json.c: jansson inside nginx pools, and the upstream's error shape */
void ngx_http_scripting_gate_json_use_pool(ngx_pool_t *pool);
ngx_int_t ngx_http_scripting_gate_json_error(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *message, ngx_str_t *context_id,
    ngx_str_t *out);


#endif /* _NGX_HTTP_SCRIPTING_GATE_UTIL_H_INCLUDED_ */
