
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The shared-memory zone: keys in an rbtree with an LRU of all keys,
 * tickets, and the registry of worker processes that hold tickets, so
 * that what a killed worker held can be given back by the others.
 *
 * Every function here expects the zone's slab mutex to be held.
 */


#include "ngx_http_scripting_gate_shm.h"


/* keys evicted at most per failed allocation, to bound the time locked */
#define NGX_HTTP_SCRIPTING_GATE_EVICT  16


static void ngx_http_scripting_gate_rbtree_insert_value(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);
static void *ngx_http_scripting_gate_alloc(ngx_http_scripting_gate_zone_t *zone,
    size_t size);
static ngx_uint_t ngx_http_scripting_gate_evict(
    ngx_http_scripting_gate_zone_t *zone);
static ngx_uint_t ngx_http_scripting_gate_proc_drop(
    ngx_http_scripting_gate_zone_t *zone, ngx_http_scripting_gate_proc_t *proc);


ngx_msec_t  ngx_http_scripting_gate_buckets[NGX_HTTP_SCRIPTING_GATE_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, NGX_MAX_UINT32_VALUE
};

/* this worker's start: with its pid, it names the worker (queue.c) */
uint64_t  ngx_http_scripting_gate_nonce;


ngx_int_t
ngx_http_scripting_gate_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_scripting_gate_zone_t  *ozone = data;

    size_t                           len;
    ngx_http_scripting_gate_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        if (zone->key.value.len != ozone->key.value.len
            || ngx_strncmp(zone->key.value.data, ozone->key.value.data,
                           zone->key.value.len)
               != 0)
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "scripting_gate_zone \"%V\" uses the \"%V\" key "
                          "while previously it used the \"%V\" key",
                          &shm_zone->shm.name, &zone->key.value,
                          &ozone->key.value);
            return NGX_ERROR;
        }

        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;

        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_alloc(zone->shpool,
                              sizeof(ngx_http_scripting_gate_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(zone->sh, sizeof(ngx_http_scripting_gate_shctx_t));

    zone->shpool->data = zone->sh;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_scripting_gate_rbtree_insert_value);
    ngx_queue_init(&zone->sh->lru);
    ngx_queue_init(&zone->sh->procs);

    len = sizeof(" in scripting_gate_zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in scripting_gate_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* the key flood degrades to evictions, not to "no memory" alerts */
    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_scripting_gate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_scripting_gate_node_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            n = (ngx_http_scripting_gate_node_t *) node;
            t = (ngx_http_scripting_gate_node_t *) temp;

            p = (ngx_memn2cmp(n->data, t->data, n->len, t->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


ngx_http_scripting_gate_node_t *
ngx_http_scripting_gate_node_get(ngx_http_scripting_gate_zone_t *zone,
    ngx_str_t *key, uint32_t hash)
{
    size_t                           size;
    ngx_int_t                        rc;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_scripting_gate_node_t  *n;

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        n = (ngx_http_scripting_gate_node_t *) node;

        rc = ngx_memn2cmp(key->data, n->data, key->len, (size_t) n->len);

        if (rc == 0) {
            ngx_queue_remove(&n->lru);
            ngx_queue_insert_head(&zone->sh->lru, &n->lru);
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    size = offsetof(ngx_http_scripting_gate_node_t, data) + key->len;

    n = ngx_http_scripting_gate_alloc(zone, size);
    if (n == NULL) {
        return NULL;
    }

    ngx_memzero(n, offsetof(ngx_http_scripting_gate_node_t, data));

    n->node.key = hash;
    n->len = (u_short) key->len;
    ngx_memcpy(n->data, key->data, key->len);
    ngx_queue_init(&n->waiters);
    ngx_queue_init(&n->holders);

    ngx_rbtree_insert(&zone->sh->rbtree, &n->node);
    ngx_queue_insert_head(&zone->sh->lru, &n->lru);
    zone->sh->keys++;

    return n;
}


ngx_http_scripting_gate_ticket_t *
ngx_http_scripting_gate_ticket_alloc(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_node_t *node)
{
    ngx_http_scripting_gate_ticket_t  *t;

    /* the key must not be evicted to make room for its own ticket */
    node->refs++;

    t = ngx_http_scripting_gate_alloc(zone,
                                      sizeof(ngx_http_scripting_gate_ticket_t));
    if (t == NULL) {
        node->refs--;
        return NULL;
    }

    ngx_memzero(t, sizeof(ngx_http_scripting_gate_ticket_t));

    t->node = node;
    t->proc = zone->proc;

    ngx_queue_insert_tail(&zone->proc->tickets, &t->pq);

    return t;
}


void
ngx_http_scripting_gate_ticket_free(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_ticket_t *t)
{
    ngx_queue_remove(&t->pq);
    t->node->refs--;

    ngx_slab_free_locked(zone->shpool, t);
}


static void *
ngx_http_scripting_gate_alloc(ngx_http_scripting_gate_zone_t *zone,
    size_t size)
{
    void  *p;

    for ( ;; ) {
        p = ngx_slab_alloc_locked(zone->shpool, size);
        if (p) {
            return p;
        }

        if (ngx_http_scripting_gate_evict(zone) == 0) {
            zone->sh->no_memory++;
            return NULL;
        }
    }
}


/* evicts the least recently used keys that nobody waits on or holds */

static ngx_uint_t
ngx_http_scripting_gate_evict(ngx_http_scripting_gate_zone_t *zone)
{
    ngx_uint_t                       n;
    ngx_queue_t                     *q, *prev;
    ngx_http_scripting_gate_node_t  *node;

    n = 0;

    for (q = ngx_queue_last(&zone->sh->lru);
         q != ngx_queue_sentinel(&zone->sh->lru)
         && n < NGX_HTTP_SCRIPTING_GATE_EVICT;
         q = prev)
    {
        prev = ngx_queue_prev(q);
        node = ngx_queue_data(q, ngx_http_scripting_gate_node_t, lru);

        if (node->refs) {
            continue;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&zone->sh->rbtree, &node->node);
        ngx_slab_free_locked(zone->shpool, node);

        zone->sh->keys--;
        zone->sh->evicted++;
        n++;
    }

    return n;
}


ngx_int_t
ngx_http_scripting_gate_proc_register(ngx_http_scripting_gate_zone_t *zone)
{
    ngx_http_scripting_gate_proc_t  *proc;

    ngx_shmtx_lock(&zone->shpool->mutex);

    proc = ngx_slab_alloc_locked(zone->shpool,
                                 sizeof(ngx_http_scripting_gate_proc_t));
    if (proc == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memzero(proc, sizeof(ngx_http_scripting_gate_proc_t));
    proc->pid = ngx_pid;
    proc->nonce = ngx_http_scripting_gate_nonce;
    ngx_queue_init(&proc->tickets);
    ngx_queue_insert_tail(&zone->sh->procs, &proc->queue);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    zone->proc = proc;

    return NGX_OK;
}


void
ngx_http_scripting_gate_proc_unregister(ngx_http_scripting_gate_zone_t *zone)
{
    if (zone->proc == NULL) {
        return;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    /* requests are gone by now; anything left is given back, not leaked */
    ngx_http_scripting_gate_proc_drop(zone, zone->proc);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    zone->proc = NULL;
}


/* gives back all that a process holds, and forgets it; mutex held */

static ngx_uint_t
ngx_http_scripting_gate_proc_drop(ngx_http_scripting_gate_zone_t *zone,
    ngx_http_scripting_gate_proc_t *proc)
{
    ngx_uint_t                         n;
    ngx_queue_t                       *q;
    ngx_http_scripting_gate_ticket_t  *t;

    for (n = 0; !ngx_queue_empty(&proc->tickets); n++) {
        q = ngx_queue_head(&proc->tickets);
        t = ngx_queue_data(q, ngx_http_scripting_gate_ticket_t, pq);

        if (t->state == NGX_HTTP_SCRIPTING_GATE_HOLDING) {
            t->node->active--;
            zone->sh->active--;
            ngx_queue_remove(&t->kq);

        } else if (t->state == NGX_HTTP_SCRIPTING_GATE_WAITING) {
            t->node->queued--;
            zone->sh->queued--;
            ngx_queue_remove(&t->kq);
        }

        ngx_http_scripting_gate_ticket_free(zone, t);
    }

    (void) ngx_atomic_fetch_add(&zone->sh->requests, -proc->requests);
    (void) ngx_atomic_fetch_add(&zone->sh->retrying, -proc->retrying);

    ngx_queue_remove(&proc->queue);
    ngx_slab_free_locked(zone->shpool, proc);

    return n;
}


/*
 * Gives back the slots and queue places of processes that are gone without
 * unregistering (SIGKILL, a crash).  Called with the mutex held; returns
 * the number of tickets reclaimed.  The caller hands the freed slots on.
 */

ngx_uint_t
ngx_http_scripting_gate_reclaim(ngx_http_scripting_gate_zone_t *zone,
    ngx_log_t *log)
{
    ngx_pid_t                        pid;
    ngx_uint_t                       n;
    ngx_queue_t                     *q, *next;
    ngx_http_scripting_gate_proc_t  *proc;

    n = 0;

    for (q = ngx_queue_head(&zone->sh->procs);
         q != ngx_queue_sentinel(&zone->sh->procs);
         q = next)
    {
        next = ngx_queue_next(q);
        proc = ngx_queue_data(q, ngx_http_scripting_gate_proc_t, queue);

        if (proc == zone->proc || ngx_http_scripting_gate_proc_alive(proc)) {
            continue;
        }

        pid = proc->pid;
        n += ngx_http_scripting_gate_proc_drop(zone, proc);

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "scripting_gate: reclaimed what process %P held "
                      "in zone \"%V\"", pid, &zone->shm_zone->shm.name);
    }

    return n;
}


void
ngx_http_scripting_gate_hist_add(ngx_http_scripting_gate_hist_t *h,
    ngx_msec_t ms)
{
    ngx_uint_t  i;

    for (i = 0; ms > ngx_http_scripting_gate_buckets[i]; i++) {
        /* void */
    }

    (void) ngx_atomic_fetch_add(&h->count[i], 1);
    (void) ngx_atomic_fetch_add(&h->sum, ms);
    (void) ngx_atomic_fetch_add(&h->total, 1);
}
