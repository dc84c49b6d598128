
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The queue: slots and a fair queue per key, shared by all workers.
 *
 * The truth is in shared memory, under the zone's slab mutex: per key, the
 * number of slots held, a FIFO of waiting tickets and the end of a shared
 * cool-down.  A ticket names the worker that owns it (pid) and a number
 * that is unique within that worker.
 *
 * Hand-off across workers.  Whoever frees a slot (or ends a cool-down)
 * runs "dispatch" under the mutex: while the key has a free slot, the head
 * ticket of its queue is granted the slot there and then (state HOLDING,
 * counted in "active"), so the limit holds whatever happens next.  Only
 * after unlocking does it tell the owner: a datagram with the ticket number
 * to the owner's unix socket (abstract name
 * "nginx-scripting-gate/<pid>/<nonce>"), or a posted event when the owner
 * is itself.  The nonce, 64 random bits drawn when the worker starts, is
 * in the name because abstract names belong to the network namespace:
 * instances in PID namespaces of their own (containers of one pod) have
 * workers of the same pids.  The owner finds its waiting request in a
 * local rbtree by that number and resumes it.  One release wakes exactly
 * one waiter, in one worker: O(1), no herd, no polling.
 *
 * A wake-up is only a hint; the state it points to is in shared memory.
 * If a datagram cannot be sent, the owner is flagged "missed" and its
 * once-a-second sweep looks at all its waiters.  The same sweep gives back
 * the slots and queue places of workers that died without releasing them,
 * so a SIGKILLed worker never leaks a slot.  A worker is alive while its
 * socket is bound (a connect() to the name is not refused): a pid that
 * has been reused, which kill(pid, 0) takes for the worker, has not the
 * nonce.
 *
 * Each waiter also has a timer, for its queue timeout, or for the end of a
 * cool-down when the key is closed; the waiter at the head that wakes at
 * the end of a cool-down dispatches the key for everybody.
 */


#include "ngx_http_scripting_gate_shm.h"
#include "ngx_http_scripting_gate_util.h"
#include <sys/random.h>
#include <sys/un.h>


#define NGX_HTTP_SCRIPTING_GATE_NOTES  64
#define NGX_HTTP_SCRIPTING_GATE_SWEEP  1000

/*
 * ms between increases of an adaptive limit: after a 429, at most (after
 * probes that failed one after another) and at least
 */
#define NGX_HTTP_SCRIPTING_GATE_PROBE      1000
#define NGX_HTTP_SCRIPTING_GATE_PROBE_MAX  1500
#define NGX_HTTP_SCRIPTING_GATE_PROBE_MIN  50


typedef struct {
    ngx_pid_t                          pid;
    uint64_t                           nonce;
    ngx_uint_t                         id;
} ngx_http_scripting_gate_note_t;


typedef struct {
    ngx_uint_t                         n;
    ngx_http_scripting_gate_note_t     note[NGX_HTTP_SCRIPTING_GATE_NOTES];
} ngx_http_scripting_gate_notes_t;


static ngx_int_t ngx_http_scripting_gate_shm_acquire(
    ngx_http_scripting_gate_hold_t *g);
static void ngx_http_scripting_gate_shm_release(
    ngx_http_scripting_gate_hold_t *g);
static void ngx_http_scripting_gate_shm_cooldown(
    ngx_http_scripting_gate_hold_t *g, ngx_msec_t delay);
static void ngx_http_scripting_gate_shm_retried(
    ngx_http_scripting_gate_hold_t *g);
static void ngx_http_scripting_gate_shm_answered(
    ngx_http_scripting_gate_hold_t *g, ngx_uint_t status);
static void ngx_http_scripting_gate_shm_budget_count(
    ngx_http_scripting_gate_hold_t *g, ngx_int_t n);
static ngx_uint_t ngx_http_scripting_gate_shm_budget_take(
    ngx_http_scripting_gate_hold_t *g, ngx_uint_t percent, ngx_uint_t min);
static void ngx_http_scripting_gate_shm_budget_give(
    ngx_http_scripting_gate_hold_t *g);
static ngx_int_t ngx_http_scripting_gate_shm_snapshot(
    ngx_http_scripting_gate_zone_t *zone, ngx_pool_t *pool,
    ngx_uint_t max_keys, ngx_http_scripting_gate_zone_stats_t *z);
static void ngx_http_scripting_gate_shm_copy(
    ngx_http_scripting_gate_key_stats_t *k,
    ngx_http_scripting_gate_counters_t *c);
static void ngx_http_scripting_gate_shm_reset(
    ngx_http_scripting_gate_zone_t *zone);
static ngx_msec_t ngx_http_scripting_gate_shm_wait(
    ngx_http_scripting_gate_node_t *node, ngx_http_scripting_gate_hold_t *g,
    ngx_msec_t now);
static void ngx_http_scripting_gate_shm_configure(
    ngx_http_scripting_gate_node_t *node, ngx_http_scripting_gate_hold_t *g,
    ngx_msec_t now);
static void ngx_http_scripting_gate_shm_grant(
    ngx_http_scripting_gate_zone_t *zone, ngx_http_scripting_gate_node_t *node,
    ngx_http_scripting_gate_ticket_t *t, ngx_msec_t now);
static ngx_http_scripting_gate_ticket_t *ngx_http_scripting_gate_shm_enqueue(
    ngx_http_scripting_gate_zone_t *zone, ngx_http_scripting_gate_node_t *node,
    ngx_http_scripting_gate_hold_t *g, ngx_msec_t now);
static void ngx_http_scripting_gate_shm_learn(
    ngx_http_scripting_gate_zone_t *zone, ngx_http_scripting_gate_node_t *node,
    ngx_uint_t outcome, ngx_msec_t now);
static void ngx_http_scripting_gate_dispatch(
    ngx_http_scripting_gate_zone_t *zone, ngx_http_scripting_gate_node_t *node,
    ngx_http_scripting_gate_notes_t *notes);
static void ngx_http_scripting_gate_note(ngx_http_scripting_gate_notes_t *notes,
    ngx_http_scripting_gate_ticket_t *t);
static void ngx_http_scripting_gate_unnote(
    ngx_http_scripting_gate_notes_t *notes, ngx_uint_t id);
static void ngx_http_scripting_gate_notify(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_notes_t *notes);
static void ngx_http_scripting_gate_wake(ngx_uint_t id);
static void ngx_http_scripting_gate_waiter_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_scripting_gate_shm_waited(
    ngx_http_scripting_gate_hold_t *g, ngx_msec_t now,
    ngx_http_scripting_gate_notes_t *notes, ngx_msec_t *timer);
static void ngx_http_scripting_gate_recv_handler(ngx_event_t *ev);
static void ngx_http_scripting_gate_sweep_handler(ngx_event_t *ev);
static ngx_msec_t ngx_http_scripting_gate_estimate(
    ngx_http_scripting_gate_node_t *node);
static void ngx_http_scripting_gate_socket_name(struct sockaddr_un *sun,
    socklen_t *len, ngx_pid_t pid, uint64_t nonce);


static ngx_rbtree_t        ngx_http_scripting_gate_waiters;
static ngx_rbtree_node_t   ngx_http_scripting_gate_sentinel;
static ngx_uint_t          ngx_http_scripting_gate_next_id;
static ngx_connection_t   *ngx_http_scripting_gate_conn;
static ngx_socket_t        ngx_http_scripting_gate_probe = (ngx_socket_t) -1;
static ngx_event_t         ngx_http_scripting_gate_sweep_event;
static ngx_array_t        *ngx_http_scripting_gate_zones;


ngx_http_scripting_gate_backend_t  ngx_http_scripting_gate_shm_backend = {
    ngx_http_scripting_gate_shm_acquire,
    ngx_http_scripting_gate_shm_release,
    ngx_http_scripting_gate_shm_cooldown,
    ngx_http_scripting_gate_shm_retried,
    ngx_http_scripting_gate_shm_answered,
    ngx_http_scripting_gate_shm_budget_count,
    ngx_http_scripting_gate_shm_budget_take,
    ngx_http_scripting_gate_shm_budget_give,
    ngx_http_scripting_gate_shm_snapshot,
    ngx_http_scripting_gate_shm_reset
};


/* a key with a rate whose next start is still to come */
#define ngx_http_scripting_gate_is_paced(node, now)                          \
    ((node)->interval                                                        \
     && (ngx_msec_int_t) ((node)->rate_next - (now)) > 0)

#define ngx_http_scripting_gate_is_cooling(node, now)                        \
    ((node)->cooldown_until                                                  \
     && (ngx_msec_int_t) ((node)->cooldown_until - (now)) > 0)


static ngx_int_t
ngx_http_scripting_gate_shm_acquire(ngx_http_scripting_gate_hold_t *g)
{
    ngx_msec_t                           now, wait;
    ngx_http_scripting_gate_zone_t      *zone;
    ngx_http_scripting_gate_node_t      *node;
    ngx_http_scripting_gate_ticket_t    *t;
#if (NGX_DEBUG)
    ngx_http_scripting_gate_log_value_t  lv;
#endif

    zone = g->zone;
    now = ngx_current_msec;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_scripting_gate_node_get(zone, &g->key, g->hash);
    if (node == NULL) {
        goto no_memory;
    }

    ngx_http_scripting_gate_shm_configure(node, g, now);

    g->effective = node->effective;

    if (!ngx_http_scripting_gate_is_cooling(node, now)
        && node->active < node->effective
        && ngx_queue_empty(&node->waiters)
        && !ngx_http_scripting_gate_is_paced(node, now))
    {
        t = ngx_http_scripting_gate_ticket_alloc(zone, node);
        if (t == NULL) {
            goto no_memory;
        }

        ngx_http_scripting_gate_shm_grant(zone, node, t, now);

        ngx_shmtx_unlock(&zone->shpool->mutex);

        g->ticket = t;
        g->acquired_at = now;

        if (g->status == NGX_HTTP_SCRIPTING_GATE_NONE) {
            g->status = NGX_HTTP_SCRIPTING_GATE_PASSED;
        }

        return NGX_OK;
    }

    /* no slot now: a place in the queue, or a refusal */

    wait = ngx_http_scripting_gate_shm_wait(node, g, now);

    if (wait == (ngx_msec_t) NGX_ERROR) {
        goto refuse;
    }

    t = ngx_http_scripting_gate_shm_enqueue(zone, node, g, now);
    if (t == NULL) {
        goto no_memory;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    g->ticket = t;
    g->queued_at = now;
    g->status = NGX_HTTP_SCRIPTING_GATE_QUEUED;
    g->waiting = 1;

    g->wnode.key = t->id;
    ngx_rbtree_insert(&ngx_http_scripting_gate_waiters, &g->wnode);

    g->event.handler = ngx_http_scripting_gate_waiter_handler;
    g->event.data = g;
    g->event.log = g->log;

    ngx_add_timer(&g->event, wait);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, g->log, 0,
                   "scripting_gate: queued \"%V\" ticket %ui",
                   ngx_http_scripting_gate_log_value(&lv, g->key.data,
                                                     g->key.len),
                   t->id);

    return NGX_AGAIN;

refuse:

    node->counters.rejected++;
    zone->sh->counters.rejected++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    g->status = NGX_HTTP_SCRIPTING_GATE_REJECTED;

    return NGX_DECLINED;

no_memory:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    g->status = NGX_HTTP_SCRIPTING_GATE_NO_MEMORY;
    g->retry_after = 1000;

    return NGX_ERROR;
}


/*
 * How long a request that gets no slot now waits before its first look,
 * or NGX_ERROR when it is refused at once (g->retry_after then says for
 * how long): its queue timeout, or the end of a cool-down that ends
 * sooner, or, at the head of the queue, the rate's next start.
 */

static ngx_msec_t
ngx_http_scripting_gate_shm_wait(ngx_http_scripting_gate_node_t *node,
    ngx_http_scripting_gate_hold_t *g, ngx_msec_t now)
{
    ngx_msec_t  wait;

    if (ngx_http_scripting_gate_is_cooling(node, now)) {
        wait = node->cooldown_until - now;

        if (wait > g->conf->queue_timeout || g->queue == 0) {
            g->retry_after = wait;
            g->cooling = 1;
            return (ngx_msec_t) NGX_ERROR;
        }

    } else {
        wait = 0;
    }

    if (node->queued >= g->queue) {
        g->retry_after = wait ? wait : ngx_http_scripting_gate_estimate(node);
        return (ngx_msec_t) NGX_ERROR;
    }

    if (wait == 0
        && ngx_queue_empty(&node->waiters)
        && ngx_http_scripting_gate_is_paced(node, now))
    {
        wait = node->rate_next - now;
    }

    return wait ? ngx_min(wait, g->conf->queue_timeout)
                : g->conf->queue_timeout;
}


/*
 * The key takes the settings of the gate line that meets it: the ceiling,
 * whether its limit learns, its rate.  An adaptive key starts at its
 * minimum and grows from there, as TCP's slow start does.  Mutex held.
 */

static void
ngx_http_scripting_gate_shm_configure(ngx_http_scripting_gate_node_t *node,
    ngx_http_scripting_gate_hold_t *g, ngx_msec_t now)
{
    ngx_http_scripting_gate_conf_t  *conf;

    conf = g->conf;

    node->limit = g->limit;
    node->rate = conf->rate;
    node->interval = conf->interval;

    if (!conf->adaptive) {
        node->adaptive = 0;
        node->effective = node->limit;
        return;
    }

    node->min = ngx_min(conf->min, node->limit);

    if (!node->adaptive) {
        node->adaptive = 1;
        node->learning = 1;
        node->effective = node->min;
        node->probe_at = now;
        node->probe_gap = NGX_HTTP_SCRIPTING_GATE_PROBE;
    }

    node->effective = ngx_max(ngx_min(node->effective, node->limit),
                              node->min);
}


/* a slot to a ticket, and the rate's next start; mutex held */

static void
ngx_http_scripting_gate_shm_grant(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_node_t *node, ngx_http_scripting_gate_ticket_t *t,
    ngx_msec_t now)
{
    t->state = NGX_HTTP_SCRIPTING_GATE_HOLDING;
    ngx_queue_insert_tail(&node->holders, &t->kq);

    node->active++;
    zone->sh->active++;
    node->counters.passed++;
    zone->sh->counters.passed++;

    if (node->interval) {
        if (!ngx_http_scripting_gate_is_paced(node, now)) {
            node->rate_next = now;
        }

        node->rate_next += node->interval;
    }
}


static ngx_http_scripting_gate_ticket_t *
ngx_http_scripting_gate_shm_enqueue(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_node_t *node, ngx_http_scripting_gate_hold_t *g,
    ngx_msec_t now)
{
    ngx_queue_t                       *q;
    ngx_http_scripting_gate_ticket_t  *t, *w;

    t = ngx_http_scripting_gate_ticket_alloc(zone, node);
    if (t == NULL) {
        return NULL;
    }

    t->state = NGX_HTTP_SCRIPTING_GATE_WAITING;
    t->id = ++ngx_http_scripting_gate_next_id;
    t->deadline = now + g->conf->queue_timeout;

    if (g->retry) {
        t->retry = 1;

        /* a retry goes ahead of newcomers, behind earlier retries */

        for (q = ngx_queue_head(&node->waiters);
             q != ngx_queue_sentinel(&node->waiters);
             q = ngx_queue_next(q))
        {
            w = ngx_queue_data(q, ngx_http_scripting_gate_ticket_t, kq);
            if (!w->retry) {
                break;
            }
        }

        ngx_queue_insert_tail(q, &t->kq);

    } else {
        ngx_queue_insert_tail(&node->waiters, &t->kq);
    }

    node->queued++;
    zone->sh->queued++;
    node->counters.queued_total++;
    zone->sh->counters.queued_total++;

    return t;
}


/*
 * An adaptive key learns from the outcome of an attempt that held one of
 * its slots (mutex held, the slot not yet given back).  A 429 or 503 says
 * the upstream admits what was in flight besides this attempt: the limit
 * goes there at once, never below min.  A success while the key runs at
 * its limit lets the limit grow by one: at once while no 429 was seen yet,
 * then at most once per probe_gap: a second after a decrease, halving with
 * each increase that held, doubling (up to 1.5 s) with each probe that
 * failed; so that a key at the upstream's limit costs about one 429 every
 * 1.5 s and one below it grows fast.
 */

static void
ngx_http_scripting_gate_shm_learn(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_node_t *node, ngx_uint_t outcome, ngx_msec_t now)
{
    ngx_uint_t  n;

    if (!node->adaptive || outcome == 0) {
        return;
    }

    if (outcome == NGX_HTTP_TOO_MANY_REQUESTS
        || outcome == NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        n = ngx_max(node->active - 1, node->min);

        if (n < node->effective) {
            node->effective = n;
            node->counters.decreases++;
            zone->sh->counters.decreases++;
        }

        /* a probe that failed waits longer before the next one */
        node->probe_gap = node->probing
                          ? ngx_min(node->probe_gap * 2,
                                    NGX_HTTP_SCRIPTING_GATE_PROBE_MAX)
                          : NGX_HTTP_SCRIPTING_GATE_PROBE;
        node->probe_at = now + node->probe_gap;
        node->probing = 0;
        node->learning = 0;
        return;
    }

    if (outcome >= NGX_HTTP_INTERNAL_SERVER_ERROR
        || node->effective >= node->limit
        || (node->active < node->effective
            && ngx_queue_empty(&node->waiters)))
    {
        return;
    }

    if (!node->learning) {
        if ((ngx_msec_int_t) (now - node->probe_at) < 0) {
            return;
        }

        if (node->probing) {
            /* the last probe held: the next one comes sooner */
            node->probe_gap = ngx_max(node->probe_gap / 2,
                                      NGX_HTTP_SCRIPTING_GATE_PROBE_MIN);
        }

        node->probing = 1;
        node->probe_at = now + node->probe_gap;
    }

    node->effective++;
    node->counters.increases++;
    zone->sh->counters.increases++;
}


static void
ngx_http_scripting_gate_shm_release(ngx_http_scripting_gate_hold_t *g)
{
    ngx_uint_t                         outcome;
    ngx_msec_t                         now, held;
    ngx_http_scripting_gate_zone_t    *zone;
    ngx_http_scripting_gate_node_t    *node;
    ngx_http_scripting_gate_notes_t    notes;
    ngx_http_scripting_gate_ticket_t  *t;

    if (g->event.timer_set) {
        ngx_del_timer(&g->event);
    }

    if (g->event.posted) {
        ngx_delete_posted_event(&g->event);
    }

    if (g->waiting) {
        ngx_rbtree_delete(&ngx_http_scripting_gate_waiters, &g->wnode);
        g->waiting = 0;
    }

    t = g->ticket;

    if (t == NULL) {
        return;
    }

    zone = g->zone;

    if (zone->proc == NULL) {
        /* the worker has left the zone, which took back all it held */
        g->ticket = NULL;
        return;
    }

    node = t->node;
    now = ngx_current_msec;
    notes.n = 0;

    /* the set's, told by answered(); the set clears it after release */
    outcome = g->gate->outcome;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (t->state == NGX_HTTP_SCRIPTING_GATE_HOLDING) {
        ngx_http_scripting_gate_shm_learn(zone, node, outcome, now);

        ngx_queue_remove(&t->kq);
        node->active--;
        zone->sh->active--;

        held = now - g->acquired_at;
        ngx_http_scripting_gate_hist_add(&zone->sh->upstream, held);
        node->hold_avg = node->hold_avg ? (node->hold_avg * 7 + held) / 8
                                        : held;

        ngx_http_scripting_gate_dispatch(zone, node, &notes);

    } else if (t->state == NGX_HTTP_SCRIPTING_GATE_WAITING) {
        ngx_queue_remove(&t->kq);
        node->queued--;
        zone->sh->queued--;

        /* the head may have been the one to wake at a cool-down's end */
        ngx_http_scripting_gate_dispatch(zone, node, &notes);
    }

    ngx_http_scripting_gate_ticket_free(zone, t);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    g->ticket = NULL;

    ngx_http_scripting_gate_notify(zone, &notes);
}


/* closes the key of a request that holds a ticket, for "delay" ms */

static void
ngx_http_scripting_gate_shm_cooldown(ngx_http_scripting_gate_hold_t *g,
    ngx_msec_t delay)
{
    ngx_msec_t                         until;
    ngx_queue_t                       *q;
    ngx_http_scripting_gate_zone_t    *zone;
    ngx_http_scripting_gate_node_t    *node;
    ngx_http_scripting_gate_notes_t    notes;
    ngx_http_scripting_gate_ticket_t  *t;

    if (g->ticket == NULL || delay == 0) {
        return;
    }

    zone = g->zone;
    node = g->ticket->node;
    until = ngx_current_msec + delay;
    notes.n = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (!ngx_http_scripting_gate_is_cooling(node, ngx_current_msec)
        || (ngx_msec_int_t) (until - node->cooldown_until) > 0)
    {
        node->cooldown_until = until;

        ngx_http_scripting_gate_dispatch(zone, node, &notes);

        /* the head learns of the cool-down and sets its timer to its end */

        if (!ngx_queue_empty(&node->waiters)) {
            q = ngx_queue_head(&node->waiters);
            t = ngx_queue_data(q, ngx_http_scripting_gate_ticket_t, kq);
            ngx_http_scripting_gate_note(&notes, t);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_scripting_gate_notify(zone, &notes);
}


/* an attempt after the first one, for the figures */

static void
ngx_http_scripting_gate_shm_retried(ngx_http_scripting_gate_hold_t *g)
{
    if (g->ticket == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&g->zone->sh->counters.retries, 1);
    (void) ngx_atomic_fetch_add(&g->ticket->node->counters.retries, 1);
}


/* an upstream 429 is counted when it comes, not when the slot is freed */

static void
ngx_http_scripting_gate_shm_answered(ngx_http_scripting_gate_hold_t *g,
    ngx_uint_t status)
{
    if (g->ticket == NULL || status != NGX_HTTP_TOO_MANY_REQUESTS) {
        return;
    }

    (void) ngx_atomic_fetch_add(&g->ticket->node->counters.upstream_429, 1);
    (void) ngx_atomic_fetch_add(&g->zone->sh->counters.upstream_429, 1);
}


/*
 * The retry budget of the zone: requests under retry (n is 1 or -1), and
 * the retries under way among them.  Each worker keeps its own shares, so
 * that a worker that dies gives them back.
 */

static void
ngx_http_scripting_gate_shm_budget_count(ngx_http_scripting_gate_hold_t *g,
    ngx_int_t n)
{
    (void) ngx_atomic_fetch_add(&g->zone->sh->requests, n);

    if (g->zone->proc) {
        g->zone->proc->requests += n;
    }
}


/*
 * Workers of the zone take shares at the same time: the check and the
 * increment are one compare-and-set, or two of them could both take the
 * last share.
 */

static ngx_uint_t
ngx_http_scripting_gate_shm_budget_take(ngx_http_scripting_gate_hold_t *g,
    ngx_uint_t percent, ngx_uint_t min)
{
    ngx_uint_t                        max;
    ngx_atomic_t                     *retrying;
    ngx_atomic_uint_t                 n;
    ngx_http_scripting_gate_shctx_t  *sh;

    sh = g->zone->sh;
    retrying = &sh->retrying;

    for ( ;; ) {
        n = *retrying;
        max = ngx_max(sh->requests * percent / 100, min);

        if (n >= max) {
            (void) ngx_atomic_fetch_add(&sh->budget_exhausted, 1);
            return 0;
        }

        if (ngx_atomic_cmp_set(retrying, n, n + 1)) {
            break;
        }
    }

    if (g->zone->proc) {
        g->zone->proc->retrying++;
    }

    return 1;
}


static void
ngx_http_scripting_gate_shm_budget_give(ngx_http_scripting_gate_hold_t *g)
{
    (void) ngx_atomic_fetch_add(&g->zone->sh->retrying, -1);

    if (g->zone->proc) {
        g->zone->proc->retrying--;
    }
}


/*
 * The zone's figures, copied under the mutex (the gate waits for it too:
 * only copying here, and pool allocations that fail by leaving the loop,
 * not by returning), names made safe out of it.
 */

static ngx_int_t
ngx_http_scripting_gate_shm_snapshot(ngx_http_scripting_gate_zone_t *zone,
    ngx_pool_t *pool, ngx_uint_t max_keys,
    ngx_http_scripting_gate_zone_stats_t *z)
{
    ngx_int_t                             rc;
    ngx_msec_t                            now;
    ngx_uint_t                            j, remote;
    ngx_queue_t                          *q;
    ngx_http_scripting_gate_node_t       *node;
    ngx_http_scripting_gate_shctx_t      *sh;
    ngx_http_scripting_gate_key_stats_t  *k;

    sh = zone->sh;
    rc = NGX_OK;

    ngx_shmtx_lock(&zone->shpool->mutex);

    now = ngx_current_msec;

    z->nkeys = sh->keys;
    z->evicted = sh->evicted;
    z->no_memory = sh->no_memory;
    z->requests = sh->requests;
    z->retrying = sh->retrying;
    z->exhausted = sh->budget_exhausted;
    /* a slot held while waiting at Redis is a place in the queue */
    remote = ngx_min(sh->remote, sh->active);
    z->totals.active = sh->active - remote;
    z->totals.queued = sh->queued + remote;
    ngx_http_scripting_gate_shm_copy(&z->totals, &sh->counters);
    z->wait = sh->wait;
    z->upstream = sh->upstream;

    if (ngx_array_init(&z->keys, pool, ngx_max(ngx_min(sh->keys, max_keys), 1),
                       sizeof(ngx_http_scripting_gate_key_stats_t))
        != NGX_OK)
    {
        rc = NGX_ERROR;
        q = ngx_queue_sentinel(&sh->lru);

    } else {
        q = ngx_queue_head(&sh->lru);
    }

    /* most recently used first; a flood of keys costs max_keys at most */

    for ( /* void */ ;
         q != ngx_queue_sentinel(&sh->lru)
         && z->keys.nelts < max_keys && rc == NGX_OK;
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_scripting_gate_node_t, lru);

        k = ngx_array_push(&z->keys);
        if (k == NULL) {
            rc = NGX_ERROR;
            continue;
        }

        ngx_memzero(k, sizeof(ngx_http_scripting_gate_key_stats_t));

        k->key.len = node->len;
        k->key.data = ngx_pnalloc(pool, node->len);
        if (k->key.data == NULL) {
            z->keys.nelts--;
            rc = NGX_ERROR;
            continue;
        }

        ngx_memcpy(k->key.data, node->data, node->len);

        k->limit = node->limit;
        k->effective_limit = node->effective;
        k->rate = node->rate;
        remote = ngx_min(node->remote, node->active);
        k->active = node->active - remote;
        k->queued = node->queued + remote;
        k->cluster_active = node->cluster_active;
        k->cluster_queued = node->cluster_queued;
        k->cooldown = ngx_http_scripting_gate_is_cooling(node, now)
                      ? node->cooldown_until - now : 0;

        ngx_http_scripting_gate_shm_copy(k, &node->counters);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_scripting_gate_utf8(pool, &z->name, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    k = z->keys.elts;

    for (j = 0; j < z->keys.nelts; j++) {
        if (ngx_http_scripting_gate_utf8(pool, &k[j].key, 1) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_scripting_gate_shm_copy(ngx_http_scripting_gate_key_stats_t *k,
    ngx_http_scripting_gate_counters_t *c)
{
    k->passed = c->passed;
    k->queued_total = c->queued_total;
    k->rejected = c->rejected;
    k->timed_out = c->timed_out;
    k->upstream_429 = c->upstream_429;
    k->retries = c->retries;
    k->decreases = c->decreases;
    k->increases = c->increases;
}


static void
ngx_http_scripting_gate_shm_reset(ngx_http_scripting_gate_zone_t *zone)
{
    ngx_queue_t                     *q;
    ngx_http_scripting_gate_node_t  *node;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_memzero(&zone->sh->counters,
                sizeof(ngx_http_scripting_gate_counters_t));
    ngx_memzero(&zone->sh->wait, sizeof(ngx_http_scripting_gate_hist_t));
    ngx_memzero(&zone->sh->upstream, sizeof(ngx_http_scripting_gate_hist_t));
    zone->sh->evicted = 0;
    zone->sh->no_memory = 0;
    zone->sh->budget_exhausted = 0;

    for (q = ngx_queue_head(&zone->sh->lru);
         q != ngx_queue_sentinel(&zone->sh->lru);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_scripting_gate_node_t, lru);
        ngx_memzero(&node->counters,
                    sizeof(ngx_http_scripting_gate_counters_t));
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}

/*
 * Hands free slots to the head of the queue; during a cool-down, refuses
 * the waiters whose queue timeout ends before the cool-down does.
 * Called with the mutex held.
 */

static void
ngx_http_scripting_gate_dispatch(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_node_t *node,
    ngx_http_scripting_gate_notes_t *notes)
{
    ngx_msec_t                         now;
    ngx_queue_t                       *q, *next;
    ngx_http_scripting_gate_ticket_t  *t;

    now = ngx_current_msec;

    if (ngx_http_scripting_gate_is_cooling(node, now)) {

        for (q = ngx_queue_head(&node->waiters);
             q != ngx_queue_sentinel(&node->waiters);
             q = next)
        {
            next = ngx_queue_next(q);
            t = ngx_queue_data(q, ngx_http_scripting_gate_ticket_t, kq);

            if ((ngx_msec_int_t) (t->deadline - node->cooldown_until) < 0) {
                ngx_queue_remove(q);
                node->queued--;
                zone->sh->queued--;
                t->state = NGX_HTTP_SCRIPTING_GATE_REFUSED;
                ngx_http_scripting_gate_note(notes, t);
            }
        }

        return;
    }

    while (node->active < node->effective
           && !ngx_queue_empty(&node->waiters))
    {
        q = ngx_queue_head(&node->waiters);
        t = ngx_queue_data(q, ngx_http_scripting_gate_ticket_t, kq);

        if (ngx_http_scripting_gate_is_paced(node, now)) {
            /* the head learns when the rate lets it start */
            ngx_http_scripting_gate_note(notes, t);
            break;
        }

        ngx_queue_remove(q);
        node->queued--;
        zone->sh->queued--;

        ngx_http_scripting_gate_shm_grant(zone, node, t, now);
        ngx_http_scripting_gate_note(notes, t);
    }
}


static void
ngx_http_scripting_gate_note(ngx_http_scripting_gate_notes_t *notes,
    ngx_http_scripting_gate_ticket_t *t)
{
    if (notes->n == NGX_HTTP_SCRIPTING_GATE_NOTES) {
        /* the owner's sweep will find it */
        t->proc->missed = 1;
        return;
    }

    notes->note[notes->n].pid = t->proc->pid;
    notes->note[notes->n].nonce = t->proc->nonce;
    notes->note[notes->n].id = t->id;
    notes->n++;
}


static void
ngx_http_scripting_gate_unnote(ngx_http_scripting_gate_notes_t *notes,
    ngx_uint_t id)
{
    ngx_uint_t  i;

    for (i = 0; i < notes->n; i++) {
        if (notes->note[i].id == id && notes->note[i].pid == ngx_pid) {
            notes->note[i] = notes->note[--notes->n];
            return;
        }
    }
}


static void
ngx_http_scripting_gate_notify(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_notes_t *notes)
{
    socklen_t                        len;
    ngx_uint_t                       i;
    ngx_queue_t                     *q;
    struct sockaddr_un               sun;
    ngx_http_scripting_gate_proc_t  *proc;

    for (i = 0; i < notes->n; i++) {

        if (notes->note[i].pid == ngx_pid) {
            ngx_http_scripting_gate_wake(notes->note[i].id);
            continue;
        }

        ngx_http_scripting_gate_socket_name(&sun, &len, notes->note[i].pid,
                                            notes->note[i].nonce);

        if (ngx_http_scripting_gate_conn
            && sendto(ngx_http_scripting_gate_conn->fd, &notes->note[i].id,
                      sizeof(ngx_uint_t), 0, (struct sockaddr *) &sun, len)
               == (ssize_t) sizeof(ngx_uint_t))
        {
            continue;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, ngx_socket_errno,
                       "scripting_gate: wake-up of %P not sent",
                       notes->note[i].pid);

        ngx_shmtx_lock(&zone->shpool->mutex);

        for (q = ngx_queue_head(&zone->sh->procs);
             q != ngx_queue_sentinel(&zone->sh->procs);
             q = ngx_queue_next(q))
        {
            proc = ngx_queue_data(q, ngx_http_scripting_gate_proc_t, queue);
            if (proc->pid == notes->note[i].pid
                && proc->nonce == notes->note[i].nonce)
            {
                proc->missed = 1;
            }
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);
    }
}


static void
ngx_http_scripting_gate_wake(ngx_uint_t id)
{
    ngx_rbtree_node_t              *node, *sentinel;
    ngx_http_scripting_gate_hold_t *g;

    node = ngx_http_scripting_gate_waiters.root;
    sentinel = ngx_http_scripting_gate_waiters.sentinel;

    while (node != sentinel) {

        if (id < node->key) {
            node = node->left;
            continue;
        }

        if (id > node->key) {
            node = node->right;
            continue;
        }

        g = (ngx_http_scripting_gate_hold_t *) node;

        if (!g->event.posted) {
            ngx_post_event(&g->event, &ngx_posted_events);
        }

        return;
    }
}


static void
ngx_http_scripting_gate_waiter_handler(ngx_event_t *ev)
{
    ngx_int_t                             rc;
    ngx_uint_t                            id;
    ngx_msec_t                            now, timer;
    ngx_http_scripting_gate_hold_t       *g;
    ngx_http_scripting_gate_zone_t       *zone;
    ngx_http_scripting_gate_notes_t       notes;
#if (NGX_DEBUG)
    ngx_http_scripting_gate_log_value_t   lv;
#endif

    g = ev->data;

    if (!g->waiting) {
        return;
    }

    zone = g->zone;
    id = g->ticket->id;
    now = ngx_current_msec;
    notes.n = 0;
    timer = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rc = ngx_http_scripting_gate_shm_waited(g, now, &notes, &timer);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    /* this waiter's own timer is set here, it needs no wake-up */
    ngx_http_scripting_gate_unnote(&notes, id);
    ngx_http_scripting_gate_notify(zone, &notes);

    if (rc == NGX_AGAIN) {
        /*
         * woken before its timer: ngx_add_timer() would keep that one if
         * the new time were less than 300 ms off (a rate's next start
         * just before the queue's deadline, say)
         */
        if (ev->timer_set) {
            ngx_del_timer(ev);
        }

        ngx_add_timer(ev, timer);
        return;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (ev->posted) {
        ngx_delete_posted_event(ev);
    }

    ngx_rbtree_delete(&ngx_http_scripting_gate_waiters, &g->wnode);
    g->waiting = 0;

    if (rc == NGX_OK) {
        g->acquired_at = now;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, g->log, 0,
                   "scripting_gate: \"%V\" waited, rc:%i",
                   ngx_http_scripting_gate_log_value(&lv, g->key.data,
                                                     g->key.len),
                   rc);

    /* the handler runs the posted requests of a request it resumes */
    g->handler(g, rc);
}


/*
 * What became of a waiting ticket, under the mutex: NGX_OK (a slot),
 * NGX_DECLINED (refused or timed out: the ticket is freed), NGX_AGAIN
 * (still waiting: *timer says when to look again).
 */

static ngx_int_t
ngx_http_scripting_gate_shm_waited(ngx_http_scripting_gate_hold_t *g,
    ngx_msec_t now, ngx_http_scripting_gate_notes_t *notes, ngx_msec_t *timer)
{
    ngx_int_t                          rc;
    ngx_http_scripting_gate_zone_t    *zone;
    ngx_http_scripting_gate_node_t    *node;
    ngx_http_scripting_gate_ticket_t  *t;

    zone = g->zone;
    t = g->ticket;
    node = t->node;

    if (t->state == NGX_HTTP_SCRIPTING_GATE_WAITING
        && !ngx_http_scripting_gate_is_cooling(node, now))
    {
        /* a cool-down is over, or a wake-up was lost: look again */
        ngx_http_scripting_gate_dispatch(zone, node, notes);
    }

    switch (t->state) {

    case NGX_HTTP_SCRIPTING_GATE_HOLDING:
        rc = NGX_OK;
        break;

    case NGX_HTTP_SCRIPTING_GATE_REFUSED:
        rc = NGX_DECLINED;
        g->status = NGX_HTTP_SCRIPTING_GATE_REJECTED;
        g->cooling = 1;
        g->retry_after = ngx_http_scripting_gate_is_cooling(node, now)
                          ? node->cooldown_until - now : 1000;
        node->counters.rejected++;
        zone->sh->counters.rejected++;
        break;

    default: /* NGX_HTTP_SCRIPTING_GATE_WAITING */

        if ((ngx_msec_int_t) (t->deadline - now) <= 0) {
            ngx_queue_remove(&t->kq);
            node->queued--;
            zone->sh->queued--;

            rc = NGX_DECLINED;
            g->status = NGX_HTTP_SCRIPTING_GATE_TIMEOUT;
            g->retry_after = ngx_http_scripting_gate_is_cooling(node, now)
                              ? node->cooldown_until - now
                              : ngx_http_scripting_gate_estimate(node);
            node->counters.timed_out++;
            zone->sh->counters.timed_out++;

            ngx_http_scripting_gate_dispatch(zone, node, notes);
            break;
        }

        rc = NGX_AGAIN;
        *timer = t->deadline - now;

        if (ngx_http_scripting_gate_is_cooling(node, now)
            && (ngx_msec_int_t) (node->cooldown_until - t->deadline) < 0)
        {
            *timer = node->cooldown_until - now;

        } else if (ngx_http_scripting_gate_is_paced(node, now)
                   && ngx_queue_head(&node->waiters) == &t->kq
                   && (ngx_msec_int_t) (node->rate_next - t->deadline) < 0)
        {
            *timer = node->rate_next - now;
        }
    }

    if (rc == NGX_OK) {
        g->effective = node->effective;
    }

    if (rc != NGX_AGAIN) {
        g->wait += now - g->queued_at;
        ngx_http_scripting_gate_hist_add(&zone->sh->wait, now - g->queued_at);
    }

    if (rc == NGX_DECLINED) {
        ngx_http_scripting_gate_ticket_free(zone, t);
        g->ticket = NULL;
    }

    return rc;
}


/* the queue's wait for one more request, for Retry-After, in ms */

static ngx_msec_t
ngx_http_scripting_gate_estimate(ngx_http_scripting_gate_node_t *node)
{
    ngx_msec_t  hold, wait;

    hold = node->hold_avg ? node->hold_avg : 1000;

    wait = hold * (node->queued + 1)
           / (node->effective ? node->effective : 1);

    return ngx_max(wait, node->interval * (node->queued + 1));
}


static void
ngx_http_scripting_gate_socket_name(struct sockaddr_un *sun, socklen_t *len,
    ngx_pid_t pid, uint64_t nonce)
{
    u_char  *p;

    ngx_memzero(sun, sizeof(struct sockaddr_un));
    sun->sun_family = AF_UNIX;

    /* the abstract namespace: nothing in the file system to clean up */
    p = ngx_sprintf((u_char *) sun->sun_path + 1,
                    "nginx-scripting-gate/%P/%016xL", pid, nonce);

    *len = (socklen_t) (p - (u_char *) sun);
}


/* see the comment at the top; in doubt, alive */

ngx_uint_t
ngx_http_scripting_gate_proc_alive(ngx_http_scripting_gate_proc_t *proc)
{
    socklen_t           len;
    struct sockaddr_un  sun;

    if (kill(proc->pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        return 0;
    }

    if (ngx_http_scripting_gate_probe == (ngx_socket_t) -1) {
        return 1;
    }

    ngx_http_scripting_gate_socket_name(&sun, &len, proc->pid, proc->nonce);

    if (connect(ngx_http_scripting_gate_probe, (struct sockaddr *) &sun, len)
        == -1
        && ngx_socket_errno == NGX_ECONNREFUSED)
    {
        return 0;
    }

    return 1;
}


ngx_int_t
ngx_http_scripting_gate_queue_init_process(ngx_cycle_t *cycle,
    ngx_array_t *zones)
{
    socklen_t                             len;
    ngx_uint_t                            i;
    ngx_socket_t                          fd;
    ngx_shm_zone_t                      **shm_zone;
    struct sockaddr_un                    sun;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    ngx_rbtree_init(&ngx_http_scripting_gate_waiters,
                    &ngx_http_scripting_gate_sentinel, ngx_rbtree_insert_value);

    if (getrandom(&ngx_http_scripting_gate_nonce, sizeof(uint64_t),
                  GRND_NONBLOCK)
        != (ssize_t) sizeof(uint64_t))
    {
        /* early at boot: not a reason to refuse to start */
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "scripting_gate: getrandom() failed, the wake-up "
                      "socket is named from the time and ngx_random()");

        ngx_http_scripting_gate_nonce = ((uint64_t) ngx_random() << 32)
                                        ^ (uint64_t) ngx_random()
                                        ^ ((uint64_t) ngx_time() << 20)
                                        ^ ngx_current_msec;
    }

    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "scripting_gate: socket() failed");
        return NGX_ERROR;
    }

    ngx_http_scripting_gate_socket_name(&sun, &len, ngx_pid,
                                        ngx_http_scripting_gate_nonce);

    if (bind(fd, (struct sockaddr *) &sun, len) == -1
        || ngx_nonblocking(fd) == -1)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "scripting_gate: bind() or ioctl() of the wake-up "
                      "socket failed");
        (void) ngx_close_socket(fd);
        return NGX_ERROR;
    }

    ngx_http_scripting_gate_conn = ngx_get_connection(fd, cycle->log);
    if (ngx_http_scripting_gate_conn == NULL) {
        (void) ngx_close_socket(fd);
        return NGX_ERROR;
    }

    ngx_http_scripting_gate_conn->read->handler =
                                          ngx_http_scripting_gate_recv_handler;
    ngx_http_scripting_gate_conn->read->log = cycle->log;

    if (ngx_handle_read_event(ngx_http_scripting_gate_conn->read, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* without it, a worker whose pid is alive is taken for alive */

    ngx_http_scripting_gate_probe = socket(AF_UNIX, SOCK_DGRAM, 0);

    if (ngx_http_scripting_gate_probe == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "scripting_gate: socket() failed");
    }

    /* registered once its socket is bound, not to be taken for dead */

    ngx_http_scripting_gate_zones = zones;
    shm_zone = zones->elts;

    for (i = 0; i < zones->nelts; i++) {
        if (ngx_http_scripting_gate_proc_register(shm_zone[i]->data)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "scripting_gate: no memory to register the worker "
                          "in zone \"%V\"", &shm_zone[i]->shm.name);
            return NGX_ERROR;
        }
    }

    ngx_http_scripting_gate_sweep_event.handler =
                                         ngx_http_scripting_gate_sweep_handler;
    ngx_http_scripting_gate_sweep_event.log = cycle->log;
    ngx_http_scripting_gate_sweep_event.data = cycle;
    ngx_http_scripting_gate_sweep_event.cancelable = 1;

    ngx_add_timer(&ngx_http_scripting_gate_sweep_event,
                  NGX_HTTP_SCRIPTING_GATE_SWEEP);

    return NGX_OK;
}


void
ngx_http_scripting_gate_queue_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t        i;
    ngx_shm_zone_t  **shm_zone;

    if (ngx_http_scripting_gate_zones == NULL) {
        return;
    }

    shm_zone = ngx_http_scripting_gate_zones->elts;

    for (i = 0; i < ngx_http_scripting_gate_zones->nelts; i++) {
        ngx_http_scripting_gate_proc_unregister(shm_zone[i]->data);
    }

    if (ngx_http_scripting_gate_conn) {
        ngx_close_connection(ngx_http_scripting_gate_conn);
        ngx_http_scripting_gate_conn = NULL;
    }

    if (ngx_http_scripting_gate_probe != (ngx_socket_t) -1) {
        (void) ngx_close_socket(ngx_http_scripting_gate_probe);
        ngx_http_scripting_gate_probe = (ngx_socket_t) -1;
    }

    ngx_http_scripting_gate_zones = NULL;
}


static void
ngx_http_scripting_gate_recv_handler(ngx_event_t *ev)
{
    ssize_t            n;
    ngx_uint_t         id;
    ngx_connection_t  *c;

    c = ev->data;

    for ( ;; ) {
        n = recv(c->fd, &id, sizeof(ngx_uint_t), 0);

        if (n == (ssize_t) sizeof(ngx_uint_t)) {
            ngx_http_scripting_gate_wake(id);
            continue;
        }

        if (n == -1 && ngx_socket_errno == NGX_EINTR) {
            continue;
        }

        break;
    }

    if (ngx_handle_read_event(ev, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "scripting_gate: wake-up socket failed");
    }
}


static void
ngx_http_scripting_gate_sweep_handler(ngx_event_t *ev)
{
    ngx_uint_t                        i, missed;
    ngx_queue_t                      *q;
    ngx_shm_zone_t                  **shm_zone;
    ngx_rbtree_node_t                *node, *root, *sentinel;
    ngx_http_scripting_gate_zone_t   *zone;
    ngx_http_scripting_gate_node_t   *n;
    ngx_http_scripting_gate_notes_t   notes;
    ngx_http_scripting_gate_hold_t   *g;

    shm_zone = ngx_http_scripting_gate_zones->elts;
    missed = 0;

    for (i = 0; i < ngx_http_scripting_gate_zones->nelts; i++) {
        zone = shm_zone[i]->data;
        notes.n = 0;

        ngx_shmtx_lock(&zone->shpool->mutex);

        if (zone->proc->missed) {
            zone->proc->missed = 0;
            missed = 1;
        }

        if (ngx_http_scripting_gate_reclaim(zone, ev->log)) {

            /* hand the given-back slots on, key by key */

            for (q = ngx_queue_head(&zone->sh->lru);
                 q != ngx_queue_sentinel(&zone->sh->lru);
                 q = ngx_queue_next(q))
            {
                n = ngx_queue_data(q, ngx_http_scripting_gate_node_t, lru);

                if (!ngx_queue_empty(&n->waiters)) {
                    ngx_http_scripting_gate_dispatch(zone, n, &notes);
                }
            }
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_http_scripting_gate_notify(zone, &notes);
    }

    if (missed) {
        root = ngx_http_scripting_gate_waiters.root;
        sentinel = ngx_http_scripting_gate_waiters.sentinel;

        if (root != sentinel) {
            for (node = ngx_rbtree_min(root, sentinel);
                 node;
                 node = ngx_rbtree_next(&ngx_http_scripting_gate_waiters, node))
            {
                g = (ngx_http_scripting_gate_hold_t *) node;

                if (!g->event.posted) {
                    ngx_post_event(&g->event, &ngx_posted_events);
                }
            }
        }
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_SCRIPTING_GATE_SWEEP);
    }
}
