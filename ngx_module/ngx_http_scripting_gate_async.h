
/*
 * Copyright (C) nginx-scripting-gate authors
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_ASYNC_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_ASYNC_H_INCLUDED_


#include "ngx_http_scripting_gate.h"
#include "ngx_http_scripting_gate_retry.h"
#include "ngx_http_scripting_gate_util.h"


#define NGX_HTTP_SCRIPTING_GATE_JOB_QUEUED      0
#define NGX_HTTP_SCRIPTING_GATE_JOB_RUNNING     1
#define NGX_HTTP_SCRIPTING_GATE_JOB_SUCCEEDED   2
#define NGX_HTTP_SCRIPTING_GATE_JOB_FAILED      3
#define NGX_HTTP_SCRIPTING_GATE_JOB_EXPIRED     4

#define NGX_HTTP_SCRIPTING_GATE_CALLBACK_NONE       0
#define NGX_HTTP_SCRIPTING_GATE_CALLBACK_PENDING    1
#define NGX_HTTP_SCRIPTING_GATE_CALLBACK_DELIVERED  2
#define NGX_HTTP_SCRIPTING_GATE_CALLBACK_FAILED     3

/* 128 random bits, in hex */
#define NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN      32
#define NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN  128
/* the digest of the submitter's value (owner=): SHA-1 */
#define NGX_HTTP_SCRIPTING_GATE_JOB_OWNER_LEN   20
#define NGX_HTTP_SCRIPTING_GATE_JOB_SALT_LEN    16


typedef struct ngx_http_scripting_gate_jobs_zone_s
    ngx_http_scripting_gate_jobs_zone_t;
typedef struct ngx_http_scripting_gate_async_conf_s
    ngx_http_scripting_gate_async_conf_t;
typedef struct ngx_http_scripting_gate_async_proxy_s
    ngx_http_scripting_gate_async_proxy_t;


/* a job in shared memory; its strings follow it in the same allocation */
typedef struct {
    ngx_str_node_t                      sn;         /* by crc32, then id */
    ngx_queue_t                         queue;      /* oldest first */
    u_char                              id[NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN];
    u_char                 owner[NGX_HTTP_SCRIPTING_GATE_JOB_OWNER_LEN];
    ngx_pid_t                           pid;        /* the worker running it */
    ngx_uint_t                          state;
    ngx_uint_t                          attempts;
    ngx_uint_t                          status;     /* the upstream's last */
    uint64_t                            created;    /* ms since the epoch */
    uint64_t                            started;
    uint64_t                            finished;
    ngx_str_t                           key;
    ngx_str_t                           method;
    ngx_str_t                           uri;
    ngx_str_t                           callback;
    u_char                             *result;     /* headers, then body */
    size_t                              result_headers;
    size_t                              result_body;
    ngx_uint_t                          cb_state;
    ngx_uint_t                          cb_status;
    ngx_uint_t                          cb_attempts;
    size_t                              reason_len;
    u_char                    reason[NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN];
} ngx_http_scripting_gate_job_t;


typedef struct {
    ngx_rbtree_t                        rbtree;
    ngx_rbtree_node_t                   sentinel;
    ngx_queue_t                         queue;
    ngx_uint_t                          stored;
    ngx_uint_t                          queued;
    ngx_uint_t                          running;
    ngx_uint_t                          accepted;
    ngx_uint_t                          refused;
    ngx_uint_t                          succeeded;
    ngx_uint_t                          failed;
    ngx_uint_t                          expired;
    ngx_uint_t                          callbacks_delivered;
    ngx_uint_t                          callbacks_failed;
    u_char                   salt[NGX_HTTP_SCRIPTING_GATE_JOB_SALT_LEN];
} ngx_http_scripting_gate_jobs_shctx_t;


/* per jobs zone, in the configuration */
struct ngx_http_scripting_gate_jobs_zone_s {
    ngx_http_scripting_gate_jobs_shctx_t  *sh;
    ngx_slab_pool_t                       *shpool;
    ngx_shm_zone_t                        *shm_zone;
    ngx_msec_t                             ttl;
    size_t                                 max_result;
    ngx_uint_t                             max_jobs;
    ngx_uint_t                             max_owner_jobs;
    ngx_http_complex_value_t              *owner;
    size_t                                 max_pending_body;
    size_t                                 pending_body; /* this worker's */
};


/* scripting_async of a location */
struct ngx_http_scripting_gate_async_conf_s {
    ngx_shm_zone_t                        *jobs;
    ngx_str_t                              pass;       /* scheme://host:port */
    ngx_str_t                              jobs_uri;
    ngx_array_t                           *callback_allow; /* prefixes */
    ngx_msec_t                             timeout;
    ngx_flag_t                             set_cookie;
};


/* the async module's configuration */
typedef struct {
    ngx_array_t                            jobs_zones; /* ..._jobs_zone_t * */
    ngx_array_t                            locations;  /* with submissions */
} ngx_http_scripting_gate_async_main_conf_t;


typedef struct {
    ngx_http_scripting_gate_async_conf_t  *async;      /* scripting_async */
    ngx_http_scripting_gate_async_proxy_t *proxy;      /* its proxy's policy */
    ngx_shm_zone_t                        *jobs;       /* the jobs endpoint */
} ngx_http_scripting_gate_async_loc_conf_t;


extern ngx_module_t  ngx_http_scripting_gate_async_module;


/* jobs: the store in shared memory and the jobs endpoint */
char *ngx_http_scripting_gate_async_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_scripting_gate_async_jobs(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_shm_zone_t *ngx_http_scripting_gate_jobs_zone(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_int_t ngx_http_scripting_gate_job_owner(ngx_http_request_t *r,
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *owner);
ngx_int_t ngx_http_scripting_gate_job_create(
    ngx_http_scripting_gate_jobs_zone_t *jz, ngx_str_t *key,
    ngx_str_t *method, ngx_str_t *uri, ngx_str_t *callback, u_char *owner,
    u_char *id, ngx_log_t *log);
void ngx_http_scripting_gate_job_running(
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id, ngx_uint_t attempts,
    ngx_uint_t status);
void ngx_http_scripting_gate_job_finish(ngx_http_scripting_gate_jobs_zone_t *jz,
    u_char *id, ngx_uint_t state, ngx_uint_t status, ngx_str_t *reason,
    ngx_str_t *headers, ngx_str_t *body);
void ngx_http_scripting_gate_job_callback(
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id, ngx_uint_t state,
    ngx_uint_t status, ngx_uint_t attempts);
ngx_int_t ngx_http_scripting_gate_job_json(ngx_pool_t *pool,
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id, ngx_str_t *prefix,
    ngx_str_t *out, ngx_uint_t *state);
ngx_int_t ngx_http_scripting_gate_jobs_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);
void ngx_http_scripting_gate_jobs_figures(
    ngx_http_scripting_gate_jobs_zone_t *jz,
    ngx_http_scripting_gate_jobs_shctx_t *figures);
ngx_int_t ngx_http_scripting_gate_jobs_init_process(ngx_cycle_t *cycle);

/* async: submission and the jobs' runs */
char *ngx_http_scripting_gate_async(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_uint_t ngx_http_scripting_gate_async_wanted(ngx_http_request_t *r);
ngx_uint_t ngx_http_scripting_gate_hop_by_hop(ngx_str_t *name);
void ngx_http_scripting_gate_async_off(ngx_conf_t *cf);


#endif /* _NGX_HTTP_SCRIPTING_GATE_ASYNC_H_INCLUDED_ */
