
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The retry module's policy, for the async module's jobs: after an answer,
 * whether to try again and when, within the retry budget.
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_RETRY_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_RETRY_H_INCLUDED_


#include "ngx_http_scripting_gate.h"


typedef struct {
    ngx_uint_t                          attempts;
    ngx_msec_t                          base;
    ngx_msec_t                          cap;
    ngx_msec_t                          deadline;
    ngx_uint_t                          jitter;
    ngx_uint_t                          budget;     /* percent */
    ngx_uint_t                          budget_min;
    ngx_array_t                        *codes;      /* ngx_uint_t */
    ngx_flag_t                          non_idempotent;
} ngx_http_scripting_gate_retry_policy_t;


typedef struct {
    ngx_http_scripting_gate_retry_policy_t  *policy;    /* scripting_retry */
    ngx_flag_t                               retry_after;
    ngx_msec_t                               retry_after_max;
} ngx_http_scripting_gate_retry_conf_t;


/* the retries of a request or a job */
typedef struct {
    ngx_http_scripting_gate_t          *gate;       /* NULL: not gated */
    ngx_log_t                          *log;
    ngx_msec_t                          started;    /* the first attempt */
    ngx_msec_t                          delay;      /* the last backoff */
    ngx_uint_t                          retries;
    unsigned                            counted:1;
    unsigned                            budgeted:1;
} ngx_http_scripting_gate_retry_t;


extern ngx_module_t  ngx_http_scripting_gate_retry_module;


ngx_int_t ngx_http_scripting_gate_retry_next(
    ngx_http_scripting_gate_retry_t *rt,
    ngx_http_scripting_gate_retry_conf_t *rcf, ngx_uint_t status,
    ngx_uint_t method, ngx_int_t rc, ngx_msec_t ra);
void ngx_http_scripting_gate_retry_answer(ngx_http_scripting_gate_t *g,
    ngx_http_scripting_gate_retry_conf_t *rcf, ngx_uint_t status,
    ngx_int_t rc, ngx_msec_t ra);
void ngx_http_scripting_gate_retry_count(ngx_http_scripting_gate_retry_t *rt);
void ngx_http_scripting_gate_retry_done(ngx_http_scripting_gate_retry_t *rt);


#endif /* _NGX_HTTP_SCRIPTING_GATE_RETRY_H_INCLUDED_ */
