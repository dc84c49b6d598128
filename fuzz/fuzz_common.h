
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * What the fuzz targets share: nginx's process-wide state set up once,
 * and a configuration context and a request built anew for every input,
 * in a pool that is destroyed when the input is done.
 */


#ifndef _FUZZ_COMMON_H_INCLUDED_
#define _FUZZ_COMMON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_scripting_gate_module.h"
#include "ngx_http_scripting_gate_shm.h"
#include "ngx_http_scripting_gate_retry.h"
#include "ngx_http_scripting_gate_async.h"


#define FUZZ_ASSERT(c)                                                        \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s\n",                  \
                    __FILE__, __LINE__, #c);                                  \
            abort();                                                          \
        }                                                                     \
    } while (0)


typedef struct {
    ngx_pool_t                *pool;
    ngx_cycle_t               *cycle;
    ngx_conf_t                *cf;
    ngx_conf_file_t            conf_file;
    ngx_http_conf_ctx_t       *ctx;
} fuzz_conf_t;


extern ngx_log_t      fuzz_log;
extern ngx_module_t  *fuzz_modules[];
extern ngx_module_t   ngx_http_scripting_gate_status_module;


void fuzz_init(void);
ngx_int_t fuzz_conf_init(fuzz_conf_t *fc);
void *fuzz_conf_loc(fuzz_conf_t *fc);
char *fuzz_conf_directive(fuzz_conf_t *fc, ngx_uint_t cmd_type,
    void **loc_conf, ngx_str_t *words, ngx_uint_t n);
void fuzz_conf_done(fuzz_conf_t *fc);
ngx_http_request_t *fuzz_request(ngx_pool_t *pool, ngx_http_conf_ctx_t *ctx);


#endif /* _FUZZ_COMMON_H_INCLUDED_ */
