
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The gate API: what the retry, async and status modules know of the gate.
 * A caller prepares a gate (the key and the limit of a request), acquires
 * a slot (granted, queued with a callback, or refused with a Retry-After),
 * releases it with the attempt's outcome, may close the key for a while
 * (cool-down), and reads the figures of every zone.  Behind it, a table of
 * backend operations; shared memory is the first backend.
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* $scripting_gate_status */
#define NGX_HTTP_SCRIPTING_GATE_NONE        0
#define NGX_HTTP_SCRIPTING_GATE_PASSED      1
#define NGX_HTTP_SCRIPTING_GATE_QUEUED      2
#define NGX_HTTP_SCRIPTING_GATE_REJECTED    3
#define NGX_HTTP_SCRIPTING_GATE_TIMEOUT     4
#define NGX_HTTP_SCRIPTING_GATE_DRY_RUN     5
#define NGX_HTTP_SCRIPTING_GATE_NO_MEMORY   6

#define NGX_HTTP_SCRIPTING_GATE_BUCKETS     12
#define NGX_HTTP_SCRIPTING_GATE_MAX_KEY     1024


typedef struct ngx_http_scripting_gate_s  ngx_http_scripting_gate_t;
typedef struct ngx_http_scripting_gate_hold_s  ngx_http_scripting_gate_hold_t;
typedef struct ngx_http_scripting_gate_zone_s  ngx_http_scripting_gate_zone_t;
typedef struct ngx_http_scripting_gate_backend_s
    ngx_http_scripting_gate_backend_t;
typedef struct ngx_http_scripting_gate_shctx_s
    ngx_http_scripting_gate_shctx_t;
typedef struct ngx_http_scripting_gate_proc_s  ngx_http_scripting_gate_proc_t;
typedef struct ngx_http_scripting_gate_ticket_s
    ngx_http_scripting_gate_ticket_t;
typedef struct ngx_http_scripting_gate_redis_s  ngx_http_scripting_gate_redis_t;
typedef struct ngx_http_scripting_gate_remote_s
    ngx_http_scripting_gate_remote_t;

/* slots granted (rc NGX_OK) or refused after a wait in a queue */
typedef void (*ngx_http_scripting_gate_handler_pt)(ngx_http_scripting_gate_t *g,
    ngx_int_t rc);
typedef void (*ngx_http_scripting_gate_hold_pt)(
    ngx_http_scripting_gate_hold_t *h, ngx_int_t rc);

/* a request another module takes over before the gate sees it */
typedef ngx_uint_t (*ngx_http_scripting_gate_defer_pt)(ngx_http_request_t *r);


/* fixed-bucket histogram, upper bounds in ms (the last one is +Inf) */
typedef struct {
    ngx_atomic_uint_t                   count[NGX_HTTP_SCRIPTING_GATE_BUCKETS];
    ngx_atomic_uint_t                   sum;
    ngx_atomic_uint_t                   total;
} ngx_http_scripting_gate_hist_t;


/* a key's figures, or a zone's totals, as a snapshot shows them */
typedef struct {
    ngx_str_t                           key;
    ngx_str_t                           label;      /* {zone="",key=""} */
    ngx_uint_t                          limit;
    ngx_uint_t                          effective_limit;
    ngx_uint_t                          rate;       /* per 1000 s */
    ngx_uint_t                          decreases;
    ngx_uint_t                          increases;
    ngx_uint_t                          active;
    ngx_uint_t                          queued;
    ngx_uint_t                          cooldown;   /* ms */
    ngx_uint_t                          passed;
    ngx_uint_t                          queued_total;
    ngx_uint_t                          rejected;
    ngx_uint_t                          timed_out;
    ngx_uint_t                          upstream_429;
    ngx_uint_t                          retries;
    ngx_uint_t                          cluster_active;  /* Redis's */
    ngx_uint_t                          cluster_queued;
} ngx_http_scripting_gate_key_stats_t;


typedef struct {
    ngx_str_t                           name;
    ngx_str_t                           label;      /* zone="" */
    ngx_array_t                         keys;       /* ..._key_stats_t */
    ngx_uint_t                          nkeys;
    ngx_uint_t                          evicted;
    ngx_uint_t                          no_memory;
    ngx_uint_t                          requests;
    ngx_uint_t                          retrying;
    ngx_uint_t                          exhausted;
    ngx_http_scripting_gate_key_stats_t totals;
    ngx_uint_t                          redis;      /* a Redis zone */
    ngx_uint_t                          redis_up;
    ngx_uint_t                          redis_rtt;  /* microseconds */
    ngx_uint_t                          redis_changes;
    ngx_uint_t                          redis_closed; /* fallback=closed */
    ngx_http_scripting_gate_hist_t      wait;
    ngx_http_scripting_gate_hist_t      upstream;
} ngx_http_scripting_gate_zone_stats_t;


/* a zone of scripting_gate_zone: its key, and its backend's state */
struct ngx_http_scripting_gate_zone_s {
    ngx_http_scripting_gate_backend_t  *backend;
    ngx_http_complex_value_t            key;
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_scripting_gate_shctx_t    *sh;         /* shared memory's */
    ngx_slab_pool_t                    *shpool;
    ngx_http_scripting_gate_proc_t     *proc;       /* this worker's */
    ngx_http_scripting_gate_redis_t    *redis;      /* scripting_gate_redis */
    unsigned                            digest:1;   /* keys as SHA-1 */
};


/* one scripting_gate line of a location */
typedef struct ngx_http_scripting_gate_conf_s  ngx_http_scripting_gate_conf_t;

struct ngx_http_scripting_gate_conf_s {
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_complex_value_t           *limit_cv;
    ngx_uint_t                          limit;      /* the ceiling */
    ngx_uint_t                          min;
    ngx_uint_t                          queue;
    ngx_msec_t                          queue_timeout;
    ngx_uint_t                          rate;       /* per 1000 s, or 0 */
    ngx_msec_t                          interval;   /* ms between starts */
    ngx_http_scripting_gate_conf_t     *local;      /* a node's own part,
                                                       when Redis learns
                                                       and paces */
    unsigned                            adaptive:1;
    unsigned                            cooldown:1;
};


/* one key of one zone: a place in its queue, or a slot */
struct ngx_http_scripting_gate_hold_s {
    ngx_rbtree_node_t                   wnode;      /* key: ticket id */
    ngx_log_t                          *log;
    ngx_http_scripting_gate_zone_t     *zone;
    ngx_http_scripting_gate_conf_t     *conf;
    ngx_http_scripting_gate_ticket_t   *ticket;     /* the backend's */
    ngx_http_scripting_gate_remote_t   *remote;     /* at Redis */
    ngx_http_scripting_gate_t          *gate;
    ngx_str_t                           key;
    uint32_t                            hash;
    ngx_uint_t                          limit;
    ngx_uint_t                          effective;  /* the limit met */
    ngx_uint_t                          queue;
    ngx_msec_t                          queued_at;
    ngx_msec_t                          acquired_at;
    ngx_msec_t                          wait;       /* ms queued, in all */
    ngx_msec_t                          retry_after; /* for a refusal */
    ngx_uint_t                          status;     /* ..._PASSED... */
    ngx_event_t                         event;
    ngx_http_scripting_gate_hold_pt     handler;
    unsigned                            waiting:1;
    unsigned                            retry:1;    /* ahead of newcomers */
    unsigned                            cooling:1;  /* refused: cool-down */
};


/*
 * A request's or a job's gates: the scripting_gate lines of its location,
 * passed in the order written; what it took is held until the attempt
 * ends.  The caller owns the memory, keeps it until it has released it,
 * and sets log, handler and data.
 */
struct ngx_http_scripting_gate_s {
    ngx_http_scripting_gate_hold_t      first;      /* of a single gate */
    ngx_http_scripting_gate_hold_t     *holds;
    ngx_uint_t                          nholds;
    ngx_uint_t                          next;       /* to acquire */
    ngx_http_scripting_gate_hold_t     *shown;      /* in the variables */
    ngx_log_t                          *log;
    ngx_http_scripting_gate_handler_pt  handler;
    void                               *data;
    ngx_uint_t                          status;     /* ..._PASSED... */
    ngx_msec_t                          retry_after; /* for a refusal */
    ngx_uint_t                          outcome;    /* upstream status */
    unsigned                            retry:1;    /* ahead of newcomers */
    unsigned                            cooling:1;  /* refused: cool-down */
    unsigned                            dry_run:1;
};


struct ngx_http_scripting_gate_backend_s {
    ngx_int_t  (*acquire)(ngx_http_scripting_gate_hold_t *h);
    void       (*release)(ngx_http_scripting_gate_hold_t *h);
    void       (*cooldown)(ngx_http_scripting_gate_hold_t *h,
                           ngx_msec_t delay);
    void       (*retried)(ngx_http_scripting_gate_hold_t *h);
    void       (*answered)(ngx_http_scripting_gate_hold_t *h,
                           ngx_uint_t status);
    void       (*budget_count)(ngx_http_scripting_gate_hold_t *h,
                               ngx_int_t n);
    ngx_uint_t (*budget_take)(ngx_http_scripting_gate_hold_t *h,
                              ngx_uint_t percent, ngx_uint_t min);
    void       (*budget_give)(ngx_http_scripting_gate_hold_t *h);
    ngx_int_t  (*snapshot)(ngx_http_scripting_gate_zone_t *zone,
                           ngx_pool_t *pool, ngx_uint_t max_keys,
                           ngx_http_scripting_gate_zone_stats_t *z);
    void       (*reset)(ngx_http_scripting_gate_zone_t *zone);
};


/* the request holds a slot at every gate */
#define ngx_http_scripting_gate_holding(g)                                   \
    ((g)->nholds && (g)->next == (g)->nholds)


extern ngx_module_t  ngx_http_scripting_gate_module;
extern ngx_http_scripting_gate_backend_t  ngx_http_scripting_gate_shm_backend;
extern ngx_http_scripting_gate_backend_t  ngx_http_scripting_gate_redis_backend;
extern ngx_http_scripting_gate_defer_pt   ngx_http_scripting_gate_defer;


/*
 * The operations, on every gate of a request or job in the order written.
 * acquire: NGX_OK (every slot), NGX_AGAIN (queued: the handler is called
 * later), NGX_DECLINED (refused: status and retry_after say why; what was
 * taken is given back), NGX_ERROR (a zone is full).  answered: the
 * upstream's status for the attempt, counted at once and learnt from when
 * the slots are given back.  release: gives back the slots and queue
 * places; idempotent.
 */
ngx_int_t ngx_http_scripting_gate_acquire(ngx_http_scripting_gate_t *g);
void ngx_http_scripting_gate_release(ngx_http_scripting_gate_t *g);
void ngx_http_scripting_gate_cooldown(ngx_http_scripting_gate_t *g,
    ngx_msec_t delay);
void ngx_http_scripting_gate_retried(ngx_http_scripting_gate_t *g);
void ngx_http_scripting_gate_answered(ngx_http_scripting_gate_t *g,
    ngx_uint_t status);
void ngx_http_scripting_gate_budget_count(ngx_http_scripting_gate_t *g,
    ngx_int_t n);
ngx_uint_t ngx_http_scripting_gate_budget_take(ngx_http_scripting_gate_t *g,
    ngx_uint_t percent, ngx_uint_t min);
void ngx_http_scripting_gate_budget_give(ngx_http_scripting_gate_t *g);
ngx_uint_t ngx_http_scripting_gate_learns(ngx_http_scripting_gate_t *g);

/* the request path: the gate module's side of a request */
ngx_int_t ngx_http_scripting_gate_prepare(ngx_http_request_t *r,
    ngx_http_scripting_gate_t *g, ngx_pool_t *pool);
ngx_int_t ngx_http_scripting_gate_reject(ngx_http_request_t *r,
    ngx_http_scripting_gate_t *g);
ngx_http_scripting_gate_t *ngx_http_scripting_gate_get(ngx_http_request_t *r,
    ngx_uint_t create);
ngx_int_t ngx_http_scripting_gate_read_body(ngx_http_request_t *r);
ngx_int_t ngx_http_scripting_gate_read_json_body(ngx_http_request_t *r);
ngx_uint_t ngx_http_scripting_gate_json_vars(ngx_conf_t *cf);
ngx_int_t ngx_http_scripting_gate_add_handlers(ngx_conf_t *cf,
    ngx_http_handler_pt rewrite, ngx_http_handler_pt precontent);

/* the figures of every zone, for the status module */
ngx_array_t *ngx_http_scripting_gate_snapshot(ngx_http_request_t *r,
    ngx_uint_t max_keys);
void ngx_http_scripting_gate_reset(ngx_http_request_t *r);

void ngx_http_scripting_gate_hist_add(ngx_http_scripting_gate_hist_t *h,
    ngx_msec_t ms);
extern ngx_msec_t  ngx_http_scripting_gate_buckets[];


#endif /* _NGX_HTTP_SCRIPTING_GATE_H_INCLUDED_ */
