
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The shared-memory backend of the gate: keys, tickets and the registry of
 * worker processes in a slab zone (zone.c), the slots and the queue over
 * them (queue.c).
 */


#ifndef _NGX_HTTP_SCRIPTING_GATE_SHM_H_INCLUDED_
#define _NGX_HTTP_SCRIPTING_GATE_SHM_H_INCLUDED_


#include "ngx_http_scripting_gate.h"


/* states of a ticket */
#define NGX_HTTP_SCRIPTING_GATE_WAITING     1
#define NGX_HTTP_SCRIPTING_GATE_HOLDING     2
#define NGX_HTTP_SCRIPTING_GATE_REFUSED     3

/* the state of a zone's Redis, as the workers last saw it */
#define NGX_HTTP_SCRIPTING_GATE_REDIS_UP    1
#define NGX_HTTP_SCRIPTING_GATE_REDIS_DOWN  2


typedef struct {
    ngx_atomic_uint_t                   passed;
    ngx_atomic_uint_t                   queued_total;
    ngx_atomic_uint_t                   rejected;
    ngx_atomic_uint_t                   timed_out;
    ngx_atomic_uint_t                   upstream_429;
    ngx_atomic_uint_t                   retries;
    ngx_atomic_uint_t                   decreases;  /* of the limit */
    ngx_atomic_uint_t                   increases;
} ngx_http_scripting_gate_counters_t;


/* one key */
typedef struct {
    ngx_rbtree_node_t                   node;       /* key: hash of data */
    ngx_queue_t                         lru;
    ngx_queue_t                         waiters;    /* FIFO of tickets */
    ngx_queue_t                         holders;    /* tickets with a slot */
    ngx_uint_t                          refs;       /* tickets naming it */
    ngx_uint_t                          limit;      /* the ceiling */
    ngx_uint_t                          effective;  /* what is let in */
    ngx_uint_t                          min;
    ngx_uint_t                          active;
    ngx_uint_t                          queued;
    ngx_msec_t                          cooldown_until;
    ngx_msec_t                          hold_avg;   /* ms a slot is held */
    ngx_uint_t                          rate;       /* per 1000 s, or 0 */
    ngx_msec_t                          interval;   /* ms between starts */
    ngx_msec_t                          rate_next;  /* the next start */
    ngx_msec_t                          probe_at;   /* the next increase */
    ngx_msec_t                          probe_gap;
    ngx_atomic_t                        remote;     /* slots held while
                                                       waiting at Redis */
    ngx_uint_t                          cluster_active; /* Redis's, as */
    ngx_uint_t                          cluster_queued; /* last seen */
    unsigned                            adaptive:1;
    unsigned                            learning:1; /* no 429 seen yet */
    unsigned                            probing:1;  /* the last increase */
    ngx_http_scripting_gate_counters_t  counters;
    u_short                             len;
    u_char                              data[1];
} ngx_http_scripting_gate_node_t;


/* a worker process that takes part in a zone */
struct ngx_http_scripting_gate_proc_s {
    ngx_queue_t                         queue;
    ngx_queue_t                         tickets;
    ngx_pid_t                           pid;
    uint64_t                            nonce;      /* random, per start */
    ngx_uint_t                          missed;     /* a wake-up was lost */
    ngx_atomic_int_t                    requests;   /* its shares of ... */
    ngx_atomic_int_t                    retrying;   /* ... the retry budget */
};


/* a place at a key: waiting in its queue or holding a slot */
struct ngx_http_scripting_gate_ticket_s {
    ngx_queue_t                         kq;
    ngx_queue_t                         pq;
    ngx_http_scripting_gate_node_t     *node;
    ngx_http_scripting_gate_proc_t     *proc;
    ngx_uint_t                          id;
    ngx_msec_t                          deadline;
    unsigned                            state:2;
    unsigned                            retry:1;
};


struct ngx_http_scripting_gate_shctx_s {
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
    ngx_atomic_t                        remote;     /* as node->remote */
    ngx_atomic_t                        redis_state; /* ..._REDIS_UP... */
    ngx_atomic_t                        redis_rtt;  /* microseconds */
    ngx_atomic_t                        redis_changes;
    ngx_http_scripting_gate_counters_t  counters;
    ngx_http_scripting_gate_hist_t      wait;
    ngx_http_scripting_gate_hist_t      upstream;
};


/* zone.c: every function expects the zone's mutex held, but the first two */
ngx_int_t ngx_http_scripting_gate_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
ngx_int_t ngx_http_scripting_gate_proc_register(
    ngx_http_scripting_gate_zone_t *zone);
void ngx_http_scripting_gate_proc_unregister(
    ngx_http_scripting_gate_zone_t *zone);
ngx_http_scripting_gate_node_t *ngx_http_scripting_gate_node_get(
    ngx_http_scripting_gate_zone_t *zone, ngx_str_t *key, uint32_t hash);
ngx_http_scripting_gate_ticket_t *ngx_http_scripting_gate_ticket_alloc(
    ngx_http_scripting_gate_zone_t *zone, ngx_http_scripting_gate_node_t *node);
void ngx_http_scripting_gate_ticket_free(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_ticket_t *t);
ngx_uint_t ngx_http_scripting_gate_reclaim(ngx_http_scripting_gate_zone_t *zone,
    ngx_log_t *log);
extern uint64_t  ngx_http_scripting_gate_nonce;

/* queue.c: the worker's part, called by the gate module */
ngx_int_t ngx_http_scripting_gate_queue_init_process(ngx_cycle_t *cycle,
    ngx_array_t *zones);
void ngx_http_scripting_gate_queue_exit_process(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_scripting_gate_proc_alive(
    ngx_http_scripting_gate_proc_t *proc);


#endif /* _NGX_HTTP_SCRIPTING_GATE_SHM_H_INCLUDED_ */
