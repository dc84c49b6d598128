
/*
 * Copyright (C) nginx-scripting-gate authors
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_CURL_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <curl/curl.h>


typedef struct ngx_http_scripting_gate_curl_s  ngx_http_scripting_gate_curl_t;

typedef void (*ngx_http_scripting_gate_curl_done_pt)(
    ngx_http_scripting_gate_curl_t *cu, CURLcode rc);


/* a transfer of the worker's multi handle */
struct ngx_http_scripting_gate_curl_s {
    CURL                                 *easy;
    ngx_http_scripting_gate_curl_done_pt  done;
    ngx_event_t                           fail;     /* posted */
    unsigned                              active:1;
};


ngx_int_t ngx_http_scripting_gate_curl_add(ngx_http_scripting_gate_curl_t *cu,
    ngx_log_t *log);
void ngx_http_scripting_gate_curl_remove(ngx_http_scripting_gate_curl_t *cu);
void ngx_http_scripting_gate_curl_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_SCRIPTING_GATE_CURL_H_INCLUDED_ */
