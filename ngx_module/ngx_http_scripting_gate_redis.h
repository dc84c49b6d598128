
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The Redis backend of the gate: what the gate module calls to configure
 * it and to start and stop its connections.
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_REDIS_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_REDIS_H_INCLUDED_


#include "ngx_http_scripting_gate.h"


char *ngx_http_scripting_gate_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_scripting_gate_redis_init(ngx_conf_t *cf,
    ngx_array_t *redis);
ngx_int_t ngx_http_scripting_gate_redis_init_process(ngx_cycle_t *cycle,
    ngx_array_t *redis);
void ngx_http_scripting_gate_redis_exit_process(ngx_array_t *redis);


#endif /* _NGX_HTTP_SCRIPTING_GATE_REDIS_H_INCLUDED_ */
