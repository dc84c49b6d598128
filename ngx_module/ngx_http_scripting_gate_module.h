
/*
 * Copyright (C) nginx-scripting-gate authors
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_MODULE_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_SCRIPTING_GATE_NONE        0
#define NGX_HTTP_SCRIPTING_GATE_PASSED      1
#define NGX_HTTP_SCRIPTING_GATE_QUEUED      2
#define NGX_HTTP_SCRIPTING_GATE_REJECTED    3
#define NGX_HTTP_SCRIPTING_GATE_TIMEOUT     4
#define NGX_HTTP_SCRIPTING_GATE_DRY_RUN     5
#define NGX_HTTP_SCRIPTING_GATE_NO_MEMORY   6

/* states of a ticket in shared memory */
#define NGX_HTTP_SCRIPTING_GATE_WAITING     1
#define NGX_HTTP_SCRIPTING_GATE_HOLDING     2
#define NGX_HTTP_SCRIPTING_GATE_REFUSED     3

#define NGX_HTTP_SCRIPTING_GATE_BUCKETS     12
#define NGX_HTTP_SCRIPTING_GATE_MAX_KEY     1024


/* fixed-bucket histogram, upper bounds in ms (the last one is +Inf) */
typedef struct {
    ngx_atomic_uint_t                   count[NGX_HTTP_SCRIPTING_GATE_BUCKETS];
    ngx_atomic_uint_t                   sum;
    ngx_atomic_uint_t                   total;
} ngx_http_scripting_gate_hist_t;


typedef struct {
    ngx_atomic_uint_t                   passed;
    ngx_atomic_uint_t                   queued_total;
    ngx_atomic_uint_t                   rejected;
    ngx_atomic_uint_t                   timed_out;
    ngx_atomic_uint_t                   upstream_429;
    ngx_atomic_uint_t                   retries;
} ngx_http_scripting_gate_counters_t;


/* one script-version key in shared memory */
typedef struct {
    ngx_rbtree_node_t                   node;       /* key: crc32 of data */
    ngx_queue_t                         lru;
    ngx_queue_t                         waiters;    /* FIFO of tickets */
    ngx_queue_t                         holders;    /* tickets with a slot */
    ngx_uint_t                          refs;       /* tickets naming it */
    ngx_uint_t                          limit;
    ngx_uint_t                          active;
    ngx_uint_t                          queued;
    ngx_msec_t                          cooldown_until;
    ngx_msec_t                          hold_avg;   /* ms a slot is held */
    ngx_http_scripting_gate_counters_t  counters;
    u_short                             len;
    u_char                              data[1];
} ngx_http_scripting_gate_node_t;


/* a worker process that takes part in a zone */
typedef struct {
    ngx_queue_t                         queue;
    ngx_queue_t                         tickets;
    ngx_pid_t                           pid;
    ngx_uint_t                          missed;     /* a wake-up was lost */
    ngx_atomic_int_t                    requests;   /* its shares of ... */
    ngx_atomic_int_t                    retrying;   /* ... the retry budget */
} ngx_http_scripting_gate_proc_t;


/* a request's place at a key: waiting in its queue or holding a slot */
typedef struct {
    ngx_queue_t                         kq;
    ngx_queue_t                         pq;
    ngx_http_scripting_gate_node_t     *node;
    ngx_http_scripting_gate_proc_t     *proc;
    ngx_uint_t                          id;
    ngx_msec_t                          deadline;
    unsigned                            state:2;
    unsigned                            retry:1;
} ngx_http_scripting_gate_ticket_t;


typedef struct {
    ngx_rbtree_t                        rbtree;
    ngx_rbtree_node_t                   sentinel;
    ngx_queue_t                         lru;
    ngx_queue_t                         procs;
    ngx_uint_t                          keys;
    ngx_atomic_uint_t                   evicted;
    ngx_atomic_uint_t                   no_memory;
    ngx_uint_t                          active;     /* slots held, all keys */
    ngx_uint_t                          queued;     /* waiting, all keys */
    ngx_atomic_t                        requests;   /* under retry, all keys */
    ngx_atomic_t                        retrying;   /* retries under way */
    ngx_atomic_uint_t                   budget_exhausted;
    ngx_http_scripting_gate_counters_t  counters;
    ngx_http_scripting_gate_hist_t      wait;
    ngx_http_scripting_gate_hist_t      upstream;
} ngx_http_scripting_gate_shctx_t;


/* per zone, in the configuration */
typedef struct {
    ngx_http_scripting_gate_shctx_t    *sh;
    ngx_slab_pool_t                    *shpool;
    ngx_http_complex_value_t            key;
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_scripting_gate_proc_t     *proc;       /* this worker's */
} ngx_http_scripting_gate_zone_t;


typedef struct ngx_http_scripting_gate_jobs_zone_s
    ngx_http_scripting_gate_jobs_zone_t;
typedef struct ngx_http_scripting_gate_async_conf_s
    ngx_http_scripting_gate_async_conf_t;


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
} ngx_http_scripting_gate_retry_conf_t;


typedef struct {
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_complex_value_t           *limit_cv;
    ngx_uint_t                          limit;
    ngx_uint_t                          queue;
    ngx_msec_t                          queue_timeout;
    ngx_uint_t                          status_code;
    ngx_flag_t                          dry_run;
    ngx_uint_t                          log_level;
    ngx_http_scripting_gate_retry_conf_t *retry;
    ngx_flag_t                          retry_after;
    ngx_msec_t                          retry_after_max;
    ngx_uint_t                          stats_max_keys;
    ngx_flag_t                          stats_reset;
    ngx_http_scripting_gate_async_conf_t *async;
    ngx_shm_zone_t                     *jobs;       /* the jobs endpoint */
} ngx_http_scripting_gate_loc_conf_t;


typedef struct {
    ngx_array_t                         zones;      /* ngx_shm_zone_t * */
    ngx_array_t                         json_vars;
    ngx_array_t                         jobs_zones; /* ..._jobs_zone_t * */
    ngx_int_t                           request_id_index;
    ngx_int_t                           proxy_index;    /* -1: no proxy */
    ngx_uint_t                          proxy_buffering; /* offsets in its */
    ngx_uint_t                          proxy_version;   /* loc conf, or */
    ngx_uint_t                          proxy_pass_body; /* UNSET_UINT */
} ngx_http_scripting_gate_main_conf_t;


typedef struct ngx_http_scripting_gate_req_s  ngx_http_scripting_gate_req_t;

typedef void (*ngx_http_scripting_gate_handler_pt)(
    ngx_http_scripting_gate_req_t *gr, ngx_int_t rc);


/*
 * A request's dealings with the gate; it lives in a pool cleanup, so that
 * it survives internal redirects and gives back what it holds whichever
 * way the request ends.
 */
struct ngx_http_scripting_gate_req_s {
    ngx_rbtree_node_t                   wnode;      /* key: ticket id */
    ngx_http_request_t                 *request;   /* NULL for a job */
    ngx_log_t                          *log;
    ngx_http_scripting_gate_zone_t     *zone;
    ngx_http_scripting_gate_ticket_t   *ticket;
    ngx_str_t                           key;
    uint32_t                            hash;
    ngx_uint_t                          limit;
    ngx_uint_t                          queue;
    ngx_msec_t                          queue_timeout;
    ngx_msec_t                          queued_at;
    ngx_msec_t                          acquired_at;
    ngx_msec_t                          wait;       /* ms queued, in all */
    ngx_msec_t                          retry_after; /* for a refusal */
    ngx_uint_t                          status;
    ngx_uint_t                          retries;
    ngx_event_t                         event;
    ngx_http_scripting_gate_handler_pt  handler;
    void                               *json;       /* json_t * */

    /* retry */
    ngx_event_t                         retry_event;
    ngx_msec_t                          started;    /* the first attempt */
    ngx_msec_t                          delay;      /* the last backoff */
    ngx_uint_t                          attempt_status;
    ngx_uint_t                          states;     /* $upstream_* before it */
    unsigned                            waiting:1;
    unsigned                            retry:1;
    unsigned                            cooling:1;  /* refused: cool-down */
    unsigned                            accounted:1;
    unsigned                            body_waiting:1;
    unsigned                            body_ready:1;
    unsigned                            json_parsed:1;
    unsigned                            gated:1;
    unsigned                            budgeted:1;
    unsigned                            counted:1;
    unsigned                            attempting:1; /* answer to come */
    unsigned                            swallow:1;  /* answer discarded */
    unsigned                            streamed:1; /* body not replayable */
};


extern ngx_module_t  ngx_http_scripting_gate_module;


/* zone: shared memory, keys, tickets, processes */
ngx_int_t ngx_http_scripting_gate_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
ngx_http_scripting_gate_node_t *ngx_http_scripting_gate_node_get(
    ngx_http_scripting_gate_zone_t *zone, ngx_str_t *key, uint32_t hash);
ngx_http_scripting_gate_ticket_t *ngx_http_scripting_gate_ticket_alloc(
    ngx_http_scripting_gate_zone_t *zone, ngx_http_scripting_gate_node_t *node);
void ngx_http_scripting_gate_ticket_free(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_ticket_t *t);
ngx_int_t ngx_http_scripting_gate_proc_register(
    ngx_http_scripting_gate_zone_t *zone);
void ngx_http_scripting_gate_proc_unregister(
    ngx_http_scripting_gate_zone_t *zone);
ngx_uint_t ngx_http_scripting_gate_reclaim(ngx_http_scripting_gate_zone_t *zone,
    ngx_log_t *log);
void ngx_http_scripting_gate_hist_add(ngx_http_scripting_gate_hist_t *h,
    ngx_msec_t ms);
extern ngx_msec_t  ngx_http_scripting_gate_buckets[];

/*
 * queue: the slot and ticket operations; the request path knows only these,
 * so that another backend (Redis leases) can stand behind them
 */
ngx_int_t ngx_http_scripting_gate_acquire(ngx_http_scripting_gate_req_t *gr);
void ngx_http_scripting_gate_release(ngx_http_scripting_gate_req_t *gr);
void ngx_http_scripting_gate_cooldown(ngx_http_scripting_gate_req_t *gr,
    ngx_msec_t delay);
ngx_int_t ngx_http_scripting_gate_queue_init_process(ngx_cycle_t *cycle);
void ngx_http_scripting_gate_queue_exit_process(ngx_cycle_t *cycle);

/* module: shared helpers */
char *ngx_http_scripting_gate_conf_zone(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size);
ngx_http_scripting_gate_req_t *ngx_http_scripting_gate_get_req(
    ngx_http_request_t *r, ngx_uint_t create);
ngx_int_t ngx_http_scripting_gate_prepare(ngx_http_request_t *r,
    ngx_http_scripting_gate_req_t *gr);
ngx_int_t ngx_http_scripting_gate_reject(ngx_http_request_t *r,
    ngx_http_scripting_gate_req_t *gr);
ngx_int_t ngx_http_scripting_gate_add_header(ngx_http_request_t *r,
    char *name, ngx_str_t *value);
ngx_table_elt_t *ngx_http_scripting_gate_header_in(ngx_http_request_t *r,
    ngx_str_t *name);
ngx_int_t ngx_http_scripting_gate_request_id(ngx_http_request_t *r,
    ngx_str_t *id);
ngx_int_t ngx_http_scripting_gate_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);
ngx_int_t ngx_http_scripting_gate_read_body(ngx_http_request_t *r,
    ngx_http_scripting_gate_req_t *gr);
void ngx_http_scripting_gate_upstream_status(ngx_http_request_t *r,
    ngx_http_scripting_gate_req_t *gr, ngx_uint_t status);
void ngx_http_scripting_gate_upstream_answer(ngx_http_scripting_gate_req_t *gr,
    ngx_http_scripting_gate_loc_conf_t *glcf, ngx_uint_t status,
    ngx_int_t rc, ngx_msec_t ra);
ngx_int_t ngx_http_scripting_gate_parse_retry_after(ngx_http_request_t *r,
    ngx_msec_t *ms);
ngx_int_t ngx_http_scripting_gate_retry_after_value(ngx_str_t *value,
    ngx_msec_t *ms);

/* json: request body variables, and jansson inside nginx pools */
char *ngx_http_scripting_gate_json_var(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_scripting_gate_json_use_pool(ngx_pool_t *pool);
ngx_int_t ngx_http_scripting_gate_json_error(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *message, ngx_str_t *context_id,
    ngx_str_t *out);

/* retry */
char *ngx_http_scripting_gate_retry(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_scripting_gate_retry_handler(ngx_http_request_t *r);
ngx_uint_t ngx_http_scripting_gate_retry_streamed(ngx_http_request_t *r);
ngx_int_t ngx_http_scripting_gate_retry_next(ngx_http_scripting_gate_req_t *gr,
    ngx_http_scripting_gate_loc_conf_t *glcf, ngx_uint_t status,
    ngx_uint_t method, ngx_int_t rc, ngx_msec_t ra);
void ngx_http_scripting_gate_retry_count(ngx_http_scripting_gate_req_t *gr);
ngx_int_t ngx_http_scripting_gate_retry_init(ngx_conf_t *cf);
void ngx_http_scripting_gate_retry_done(ngx_http_scripting_gate_req_t *gr);

/* stats */
char *ngx_http_scripting_gate_stats(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_scripting_gate_stats_utf8(ngx_pool_t *pool, ngx_str_t *s,
    ngx_uint_t key);


#endif /* _NGX_HTTP_SCRIPTING_GATE_MODULE_H_INCLUDED_ */
