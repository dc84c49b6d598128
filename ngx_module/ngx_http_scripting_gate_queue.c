
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
 * to the owner's unix socket (abstract name "nginx-scripting-gate/<pid>"),
 * or a posted event when the owner is itself.  The owner finds its waiting
 * request in a local rbtree by that number and resumes it.  One release
 * wakes exactly one waiter, in one worker: O(1), no herd, no polling.
 *
 * A wake-up is only a hint; the state it points to is in shared memory.
 * If a datagram cannot be sent, the owner is flagged "missed" and its
 * once-a-second sweep looks at all its waiters.  The same sweep gives back
 * the slots and queue places of workers that died without releasing them
 * (kill(pid, 0) says ESRCH), so a SIGKILLed worker never leaks a slot.
 *
 * Each waiter also has a timer, for its queue timeout, or for the end of a
 * cool-down when the key is closed; the waiter at the head that wakes at
 * the end of a cool-down dispatches the key for everybody.
 */


#include "ngx_http_scripting_gate_module.h"
#include <sys/un.h>


#define NGX_HTTP_SCRIPTING_GATE_NOTES  64
#define NGX_HTTP_SCRIPTING_GATE_SWEEP  1000


typedef struct {
    ngx_pid_t                          pid;
    ngx_uint_t                         id;
} ngx_http_scripting_gate_note_t;


typedef struct {
    ngx_uint_t                         n;
    ngx_http_scripting_gate_note_t     note[NGX_HTTP_SCRIPTING_GATE_NOTES];
} ngx_http_scripting_gate_notes_t;


static void ngx_http_scripting_gate_dispatch(
    ngx_http_scripting_gate_zone_t *zone, ngx_http_scripting_gate_node_t *node,
    ngx_http_scripting_gate_notes_t *notes);
static void ngx_http_scripting_gate_note(ngx_http_scripting_gate_notes_t *notes,
    ngx_http_scripting_gate_ticket_t *t);
static void ngx_http_scripting_gate_notify(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_notes_t *notes);
static void ngx_http_scripting_gate_wake(ngx_uint_t id);
static void ngx_http_scripting_gate_waiter_handler(ngx_event_t *ev);
static void ngx_http_scripting_gate_recv_handler(ngx_event_t *ev);
static void ngx_http_scripting_gate_sweep_handler(ngx_event_t *ev);
static ngx_msec_t ngx_http_scripting_gate_estimate(
    ngx_http_scripting_gate_node_t *node);
static void ngx_http_scripting_gate_socket_name(struct sockaddr_un *sun,
    socklen_t *len, ngx_pid_t pid);


static ngx_rbtree_t        ngx_http_scripting_gate_waiters;
static ngx_rbtree_node_t   ngx_http_scripting_gate_sentinel;
static ngx_uint_t          ngx_http_scripting_gate_next_id;
static ngx_connection_t   *ngx_http_scripting_gate_conn;
static ngx_event_t         ngx_http_scripting_gate_sweep_event;
static ngx_array_t        *ngx_http_scripting_gate_zones;


#define ngx_http_scripting_gate_is_cooling(node, now)                        \
    ((node)->cooldown_until                                                  \
     && (ngx_msec_int_t) ((node)->cooldown_until - (now)) > 0)


ngx_int_t
ngx_http_scripting_gate_acquire(ngx_http_scripting_gate_req_t *gr)
{
    ngx_msec_t                          now, wait;
    ngx_queue_t                        *q;
    ngx_http_scripting_gate_zone_t     *zone;
    ngx_http_scripting_gate_node_t     *node;
    ngx_http_scripting_gate_ticket_t   *t, *w;

    zone = gr->zone;
    now = ngx_current_msec;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_scripting_gate_node_get(zone, &gr->key, gr->hash);
    if (node == NULL) {
        goto no_memory;
    }

    node->limit = gr->limit;

    if (!ngx_http_scripting_gate_is_cooling(node, now)
        && node->active < node->limit
        && ngx_queue_empty(&node->waiters))
    {
        t = ngx_http_scripting_gate_ticket_alloc(zone, node);
        if (t == NULL) {
            goto no_memory;
        }

        t->state = NGX_HTTP_SCRIPTING_GATE_HOLDING;
        ngx_queue_insert_tail(&node->holders, &t->kq);

        node->active++;
        zone->sh->active++;
        node->counters.passed++;
        zone->sh->counters.passed++;

        ngx_shmtx_unlock(&zone->shpool->mutex);

        gr->ticket = t;
        gr->acquired_at = now;

        if (gr->status == NGX_HTTP_SCRIPTING_GATE_NONE) {
            gr->status = NGX_HTTP_SCRIPTING_GATE_PASSED;
        }

        return NGX_OK;
    }

    if (ngx_http_scripting_gate_is_cooling(node, now)) {
        wait = node->cooldown_until - now;

        if (wait > gr->queue_timeout || gr->queue == 0) {
            gr->retry_after = wait;
            gr->cooling = 1;
            goto refuse;
        }

    } else {
        wait = 0;
    }

    if (node->queued >= gr->queue) {
        gr->retry_after = wait ? wait : ngx_http_scripting_gate_estimate(node);
        goto refuse;
    }

    t = ngx_http_scripting_gate_ticket_alloc(zone, node);
    if (t == NULL) {
        goto no_memory;
    }

    t->state = NGX_HTTP_SCRIPTING_GATE_WAITING;
    t->id = ++ngx_http_scripting_gate_next_id;
    t->deadline = now + gr->queue_timeout;

    if (gr->retry) {
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

    ngx_shmtx_unlock(&zone->shpool->mutex);

    gr->ticket = t;
    gr->queued_at = now;
    gr->status = NGX_HTTP_SCRIPTING_GATE_QUEUED;
    gr->waiting = 1;

    gr->wnode.key = t->id;
    ngx_rbtree_insert(&ngx_http_scripting_gate_waiters, &gr->wnode);

    gr->event.handler = ngx_http_scripting_gate_waiter_handler;
    gr->event.data = gr;
    gr->event.log = gr->log;

    ngx_add_timer(&gr->event, wait ? wait : gr->queue_timeout);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, gr->log, 0,
                   "scripting gate: queued \"%V\" ticket %ui", &gr->key, t->id);

    return NGX_AGAIN;

refuse:

    node->counters.rejected++;
    zone->sh->counters.rejected++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    gr->status = NGX_HTTP_SCRIPTING_GATE_REJECTED;

    return NGX_DECLINED;

no_memory:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    gr->status = NGX_HTTP_SCRIPTING_GATE_NO_MEMORY;
    gr->retry_after = 1000;

    return NGX_ERROR;
}


void
ngx_http_scripting_gate_release(ngx_http_scripting_gate_req_t *gr)
{
    ngx_msec_t                         now, held;
    ngx_http_scripting_gate_zone_t    *zone;
    ngx_http_scripting_gate_node_t    *node;
    ngx_http_scripting_gate_notes_t    notes;
    ngx_http_scripting_gate_ticket_t  *t;

    if (gr->event.timer_set) {
        ngx_del_timer(&gr->event);
    }

    if (gr->event.posted) {
        ngx_delete_posted_event(&gr->event);
    }

    if (gr->waiting) {
        ngx_rbtree_delete(&ngx_http_scripting_gate_waiters, &gr->wnode);
        gr->waiting = 0;
    }

    t = gr->ticket;

    if (t == NULL) {
        return;
    }

    zone = gr->zone;
    node = t->node;
    now = ngx_current_msec;
    notes.n = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (t->state == NGX_HTTP_SCRIPTING_GATE_HOLDING) {
        ngx_queue_remove(&t->kq);
        node->active--;
        zone->sh->active--;

        held = now - gr->acquired_at;
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

    gr->ticket = NULL;

    ngx_http_scripting_gate_notify(zone, &notes);
}


/* closes the key of a request that holds a ticket, for "delay" ms */

void
ngx_http_scripting_gate_cooldown(ngx_http_scripting_gate_req_t *gr,
    ngx_msec_t delay)
{
    ngx_msec_t                         until;
    ngx_queue_t                       *q;
    ngx_http_scripting_gate_zone_t    *zone;
    ngx_http_scripting_gate_node_t    *node;
    ngx_http_scripting_gate_notes_t    notes;
    ngx_http_scripting_gate_ticket_t  *t;

    if (gr->ticket == NULL || delay == 0) {
        return;
    }

    zone = gr->zone;
    node = gr->ticket->node;
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

    while (node->active < node->limit && !ngx_queue_empty(&node->waiters)) {
        q = ngx_queue_head(&node->waiters);
        t = ngx_queue_data(q, ngx_http_scripting_gate_ticket_t, kq);

        ngx_queue_remove(q);
        node->queued--;
        zone->sh->queued--;

        t->state = NGX_HTTP_SCRIPTING_GATE_HOLDING;
        ngx_queue_insert_tail(&node->holders, &t->kq);

        node->active++;
        zone->sh->active++;
        node->counters.passed++;
        zone->sh->counters.passed++;

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
    notes->note[notes->n].id = t->id;
    notes->n++;
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

        ngx_http_scripting_gate_socket_name(&sun, &len, notes->note[i].pid);

        if (ngx_http_scripting_gate_conn
            && sendto(ngx_http_scripting_gate_conn->fd, &notes->note[i].id,
                      sizeof(ngx_uint_t), 0, (struct sockaddr *) &sun, len)
               == (ssize_t) sizeof(ngx_uint_t))
        {
            continue;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, ngx_socket_errno,
                       "scripting gate: wake-up of %P not sent",
                       notes->note[i].pid);

        ngx_shmtx_lock(&zone->shpool->mutex);

        for (q = ngx_queue_head(&zone->sh->procs);
             q != ngx_queue_sentinel(&zone->sh->procs);
             q = ngx_queue_next(q))
        {
            proc = ngx_queue_data(q, ngx_http_scripting_gate_proc_t, queue);
            if (proc->pid == notes->note[i].pid) {
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
    ngx_http_scripting_gate_req_t  *gr;

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

        gr = (ngx_http_scripting_gate_req_t *) node;

        if (!gr->event.posted) {
            ngx_post_event(&gr->event, &ngx_posted_events);
        }

        return;
    }
}


static void
ngx_http_scripting_gate_waiter_handler(ngx_event_t *ev)
{
    ngx_int_t                          rc;
    ngx_msec_t                         now, timer;
    ngx_http_scripting_gate_req_t     *gr;
    ngx_http_scripting_gate_zone_t    *zone;
    ngx_http_scripting_gate_node_t    *node;
    ngx_http_scripting_gate_notes_t    notes;
    ngx_http_scripting_gate_ticket_t  *t;

    gr = ev->data;

    if (!gr->waiting) {
        return;
    }

    zone = gr->zone;
    t = gr->ticket;
    node = t->node;
    now = ngx_current_msec;
    notes.n = 0;
    timer = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (t->state == NGX_HTTP_SCRIPTING_GATE_WAITING
        && !ngx_http_scripting_gate_is_cooling(node, now))
    {
        /* a cool-down is over, or a wake-up was lost: look again */
        ngx_http_scripting_gate_dispatch(zone, node, &notes);
    }

    switch (t->state) {

    case NGX_HTTP_SCRIPTING_GATE_HOLDING:
        rc = NGX_OK;
        break;

    case NGX_HTTP_SCRIPTING_GATE_REFUSED:
        rc = NGX_DECLINED;
        gr->status = NGX_HTTP_SCRIPTING_GATE_REJECTED;
        gr->cooling = 1;
        gr->retry_after = ngx_http_scripting_gate_is_cooling(node, now)
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
            gr->status = NGX_HTTP_SCRIPTING_GATE_TIMEOUT;
            gr->retry_after = ngx_http_scripting_gate_is_cooling(node, now)
                              ? node->cooldown_until - now
                              : ngx_http_scripting_gate_estimate(node);
            node->counters.timed_out++;
            zone->sh->counters.timed_out++;

            ngx_http_scripting_gate_dispatch(zone, node, &notes);
            break;
        }

        rc = NGX_AGAIN;
        timer = t->deadline - now;

        if (ngx_http_scripting_gate_is_cooling(node, now)
            && (ngx_msec_int_t) (node->cooldown_until - t->deadline) < 0)
        {
            timer = node->cooldown_until - now;
        }
    }

    if (rc != NGX_AGAIN) {
        gr->wait += now - gr->queued_at;
        ngx_http_scripting_gate_hist_add(&zone->sh->wait, now - gr->queued_at);
    }

    if (rc == NGX_DECLINED) {
        ngx_http_scripting_gate_ticket_free(zone, t);
        gr->ticket = NULL;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_scripting_gate_notify(zone, &notes);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(ev, timer);
        return;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (ev->posted) {
        ngx_delete_posted_event(ev);
    }

    ngx_rbtree_delete(&ngx_http_scripting_gate_waiters, &gr->wnode);
    gr->waiting = 0;

    if (rc == NGX_OK) {
        gr->acquired_at = now;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, gr->log, 0,
                   "scripting gate: \"%V\" waited, rc:%i", &gr->key, rc);

    /* the handler runs the posted requests of a request it resumes */
    gr->handler(gr, rc);
}


/* the queue's wait for one more request, for Retry-After, in ms */

static ngx_msec_t
ngx_http_scripting_gate_estimate(ngx_http_scripting_gate_node_t *node)
{
    ngx_msec_t  hold;

    hold = node->hold_avg ? node->hold_avg : 1000;

    return hold * (node->queued + 1) / (node->limit ? node->limit : 1);
}


static void
ngx_http_scripting_gate_socket_name(struct sockaddr_un *sun, socklen_t *len,
    ngx_pid_t pid)
{
    u_char  *p;

    ngx_memzero(sun, sizeof(struct sockaddr_un));
    sun->sun_family = AF_UNIX;

    /* the abstract namespace: nothing in the file system to clean up */
    p = ngx_sprintf((u_char *) sun->sun_path + 1, "nginx-scripting-gate/%P",
                    pid);

    *len = (socklen_t) (p - (u_char *) sun);
}


ngx_int_t
ngx_http_scripting_gate_queue_init_process(ngx_cycle_t *cycle)
{
    socklen_t                             len;
    ngx_uint_t                            i;
    ngx_socket_t                          fd;
    ngx_shm_zone_t                      **shm_zone;
    struct sockaddr_un                    sun;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    gmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_scripting_gate_module);

    if (gmcf == NULL || gmcf->zones.nelts == 0) {
        return NGX_OK;
    }

    ngx_rbtree_init(&ngx_http_scripting_gate_waiters,
                    &ngx_http_scripting_gate_sentinel, ngx_rbtree_insert_value);

    ngx_http_scripting_gate_zones = &gmcf->zones;
    shm_zone = gmcf->zones.elts;

    for (i = 0; i < gmcf->zones.nelts; i++) {
        if (ngx_http_scripting_gate_proc_register(shm_zone[i]->data)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "scripting_gate: no memory to register the worker "
                          "in zone \"%V\"", &shm_zone[i]->shm.name);
            return NGX_ERROR;
        }
    }

    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_socket_errno,
                      "scripting_gate: socket() failed");
        return NGX_ERROR;
    }

    ngx_http_scripting_gate_socket_name(&sun, &len, ngx_pid);

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
    ngx_http_scripting_gate_req_t    *gr;

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
                gr = (ngx_http_scripting_gate_req_t *) node;

                if (!gr->event.posted) {
                    ngx_post_event(&gr->event, &ngx_posted_events);
                }
            }
        }
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_SCRIPTING_GATE_SWEEP);
    }
}
