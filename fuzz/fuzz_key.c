
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Keys: a request's key and limit as the location evaluates them
 * (ngx_http_scripting_gate_prepare(): empty keys are not gated, keys
 * above 1024 bytes are gated by their first 991 bytes, '#' and the MD5 of
 * the whole in hex, a limit from a variable must be a positive number),
 * then the key in a small shared-memory zone
 * (ngx_http_scripting_gate_init_zone(), ngx_http_scripting_gate_node_get():
 * rbtree and LRU in a slab pool, eviction of idle keys when it is full),
 * with tickets that pin keys (ngx_http_scripting_gate_ticket_alloc/free)
 * and a worker that goes away (ngx_http_scripting_gate_proc_unregister).
 *
 * Input: one byte of setup (zone size, and whether all keys hash to four
 * values so that the rbtree's ties are compared by key bytes), then
 * operations, one byte each with its operands:
 *
 *   0, 1   a key of up to 255 bytes        2  a key of 1000 to 1255 bytes
 *   3      a limit from a "variable"       4  the limit of the location
 *   5      pin the next key with a ticket  6  unpin a key
 *   7      check the zone                  8  reload: the zone is reused
 *
 * After every operation the harness checks what the zone promises: a key
 * is found under its own bytes and hash, the LRU and the rbtree hold the
 * same keys, pinned keys are never evicted, and a key is refused only
 * when every key in the zone is pinned.
 */


#include "fuzz_common.h"
#include <ngx_md5.h>


#define FUZZ_ZONE_MAX     (48 * 4096)
#define FUZZ_TICKETS      64


typedef struct {
    ngx_http_scripting_gate_ticket_t  *ticket;
    ngx_http_scripting_gate_node_t    *node;
    u_char                            *key;
    size_t                             len;
} fuzz_pin_t;


static u_char      *fuzz_region;
static fuzz_pin_t   fuzz_pins[FUZZ_TICKETS];
static ngx_uint_t   fuzz_npins;


static ngx_uint_t
fuzz_rbtree_count(ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    if (node == sentinel) {
        return 0;
    }

    return 1 + fuzz_rbtree_count(node->left, sentinel)
             + fuzz_rbtree_count(node->right, sentinel);
}


/* the harness's own search, that does not touch the LRU */

static ngx_http_scripting_gate_node_t *
fuzz_lookup(ngx_http_scripting_gate_zone_t *zone, u_char *key, size_t len,
    uint32_t hash)
{
    ngx_int_t                        rc;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_scripting_gate_node_t  *n;

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {
        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        n = (ngx_http_scripting_gate_node_t *) node;
        rc = ngx_memn2cmp(key, n->data, len, n->len);

        if (rc == 0) {
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
fuzz_check_zone(ngx_http_scripting_gate_zone_t *zone)
{
    ngx_uint_t                       n, i, j, refs;
    ngx_queue_t                     *q;
    ngx_http_scripting_gate_node_t  *node;

    n = 0;
    refs = 0;

    for (q = ngx_queue_head(&zone->sh->lru);
         q != ngx_queue_sentinel(&zone->sh->lru);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_scripting_gate_node_t, lru);

        FUZZ_ASSERT(node->len <= NGX_HTTP_SCRIPTING_GATE_MAX_KEY);
        FUZZ_ASSERT(fuzz_lookup(zone, node->data, node->len,
                                (uint32_t) node->node.key)
                    == node);

        refs += node->refs;
        n++;
    }

    /* each pinned key counts its pins, and no other key has any */
    FUZZ_ASSERT(refs == fuzz_npins);
    FUZZ_ASSERT(n == zone->sh->keys);
    FUZZ_ASSERT(fuzz_rbtree_count(zone->sh->rbtree.root,
                                  zone->sh->rbtree.sentinel)
                == n);

    for (i = 0; i < fuzz_npins; i++) {
        refs = 0;

        for (j = 0; j < fuzz_npins; j++) {
            refs += (fuzz_pins[j].node == fuzz_pins[i].node);
        }

        FUZZ_ASSERT(fuzz_pins[i].node->refs == refs);
        FUZZ_ASSERT(fuzz_pins[i].ticket->node == fuzz_pins[i].node);
        FUZZ_ASSERT(fuzz_pins[i].node->len == fuzz_pins[i].len);
        FUZZ_ASSERT(ngx_memcmp(fuzz_pins[i].node->data, fuzz_pins[i].key,
                               fuzz_pins[i].len)
                    == 0);
    }
}


static ngx_uint_t
fuzz_all_pinned(ngx_http_scripting_gate_zone_t *zone)
{
    ngx_queue_t                     *q;
    ngx_http_scripting_gate_node_t  *node;

    for (q = ngx_queue_head(&zone->sh->lru);
         q != ngx_queue_sentinel(&zone->sh->lru);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_scripting_gate_node_t, lru);

        if (node->refs == 0) {
            return 0;
        }
    }

    return 1;
}


static void
fuzz_unpin(ngx_http_scripting_gate_zone_t *zone, ngx_uint_t i)
{
    ngx_shmtx_lock(&zone->shpool->mutex);
    ngx_http_scripting_gate_ticket_free(zone, fuzz_pins[i].ticket);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    fuzz_pins[i] = fuzz_pins[--fuzz_npins];
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();

    fuzz_region = ngx_alloc(FUZZ_ZONE_MAX, &fuzz_log);
    if (fuzz_region == NULL) {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                              *key, *limit, digest[16];
    size_t                               len, zsize;
    uint32_t                             hash;
    ngx_int_t                            rc, n;
    ngx_md5_t                            md5;
    ngx_uint_t                           op, collide, pin;
    ngx_conf_t                           cf;
    ngx_pool_t                          *pool;
    ngx_slab_pool_t                     *sp;
    ngx_shm_zone_t                       shm_zone, shm_zone2;
    ngx_http_request_t                  *r;
    ngx_http_conf_ctx_t                  ctx;
    const uint8_t                       *p, *last;
    ngx_http_complex_value_t             limit_cv;
    ngx_http_scripting_gate_t            g;
    ngx_http_scripting_gate_conf_t      *gc;
    ngx_http_scripting_gate_hold_t      *h;
    ngx_http_scripting_gate_zone_t      *zone, *zone2;
    ngx_http_scripting_gate_node_t      *node;
    ngx_http_scripting_gate_loc_conf_t  *glcf;

    static void  *confs[64];

    if (size == 0) {
        return 0;
    }

    p = data;
    last = data + size;

    zsize = (8 + (*p & 31)) * ngx_pagesize;
    collide = *p & 32;
    p++;

    if (zsize > FUZZ_ZONE_MAX) {
        zsize = FUZZ_ZONE_MAX;
    }

    pool = ngx_create_pool(4096, &fuzz_log);
    if (pool == NULL) {
        abort();
    }

    /* the location: scripting_gate zone=fuzz limit=10 */

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.pool = pool;
    cf.log = &fuzz_log;

    glcf = ((ngx_http_module_t *) ngx_http_scripting_gate_module.ctx)
               ->create_loc_conf(&cf);
    if (glcf == NULL) {
        abort();
    }

    FUZZ_ASSERT(ngx_http_scripting_gate_module.ctx_index < 64);

    confs[ngx_http_scripting_gate_module.ctx_index] = glcf;
    ctx.main_conf = confs;
    ctx.srv_conf = confs;
    ctx.loc_conf = confs;

    r = fuzz_request(pool, &ctx);
    zone = ngx_pcalloc(pool, sizeof(ngx_http_scripting_gate_zone_t));
    if (r == NULL || zone == NULL) {
        abort();
    }

    /* the zone, as ngx_init_cycle() makes it */

    ngx_memzero(&shm_zone, sizeof(ngx_shm_zone_t));
    shm_zone.shm.addr = fuzz_region;
    shm_zone.shm.size = zsize;
    shm_zone.shm.log = &fuzz_log;
    ngx_str_set(&shm_zone.shm.name, "fuzz");
    shm_zone.data = zone;
    shm_zone.tag = &ngx_http_scripting_gate_module;

    /* fresh shared memory is zeroed, its lock too */
    ngx_memzero(fuzz_region, zsize);

    sp = (ngx_slab_pool_t *) fuzz_region;
    sp->end = fuzz_region + zsize;
    sp->min_shift = 3;
    sp->addr = fuzz_region;

    if (ngx_shmtx_create(&sp->mutex, &sp->lock, NULL) != NGX_OK) {
        abort();
    }

    ngx_slab_init(sp);

    zone->shm_zone = &shm_zone;
    ngx_str_set(&zone->key.value, "$script_key");

    FUZZ_ASSERT(ngx_http_scripting_gate_init_zone(&shm_zone, NULL) == NGX_OK);
    FUZZ_ASSERT(ngx_http_scripting_gate_proc_register(zone) == NGX_OK);

    glcf->gates = ngx_array_create(pool, 1,
                                   sizeof(ngx_http_scripting_gate_conf_t));
    if (glcf->gates == NULL) {
        abort();
    }

    gc = ngx_array_push(glcf->gates);
    if (gc == NULL) {
        abort();
    }

    ngx_memzero(gc, sizeof(ngx_http_scripting_gate_conf_t));
    gc->shm_zone = &shm_zone;
    gc->limit = 10;
    gc->queue = 100;
    gc->queue_timeout = 1000;
    gc->cooldown = 1;

    glcf->dry_run = 0;

    fuzz_npins = 0;
    pin = 0;

    while (p < last) {
        op = *p++ % 9;

        switch (op) {

        case 0:
        case 1:
        case 2:
            len = (p < last) ? *p++ : 0;

            if (op == 2) {
                len += 1000;
            }

            len = ngx_min(len, (size_t) (last - p));

            /* the key's value, evaluated in the request's pool */
            key = ngx_pnalloc(pool, len ? len : 1);
            if (key == NULL) {
                abort();
            }

            ngx_memcpy(key, p, len);
            p += len;

            zone->key.value.data = key;
            zone->key.value.len = len;
            zone->key.lengths = NULL;

            ngx_memzero(&g, sizeof(ngx_http_scripting_gate_t));

            rc = ngx_http_scripting_gate_prepare(r, &g, pool);

            if (len == 0) {
                FUZZ_ASSERT(rc == NGX_DECLINED);
                break;
            }

            if (len > NGX_HTTP_SCRIPTING_GATE_MAX_KEY) {
                /* what the gate must use instead: head, '#', digest */
                ngx_md5_init(&md5);
                ngx_md5_update(&md5, key, len);
                ngx_md5_final(digest, &md5);

                len = NGX_HTTP_SCRIPTING_GATE_MAX_KEY - 2 * sizeof(digest) - 1;
                key[len++] = '#';
                len = ngx_hex_dump(key + len, digest, sizeof(digest)) - key;

                FUZZ_ASSERT(len == NGX_HTTP_SCRIPTING_GATE_MAX_KEY);
            }

            if (gc->limit_cv) {
                n = ngx_atoi(gc->limit_cv->value.data,
                             gc->limit_cv->value.len);

                if (n <= 0) {
                    FUZZ_ASSERT(rc == NGX_DECLINED);
                    break;
                }

            } else {
                n = gc->limit;
            }

            /* the location's one gate: a hold on the key */

            FUZZ_ASSERT(rc == NGX_OK && g.nholds == 1);

            h = &g.holds[0];

            FUZZ_ASSERT(h->limit == (ngx_uint_t) n);
            FUZZ_ASSERT(h->zone == zone && h->conf == gc);
            FUZZ_ASSERT(h->key.len == len
                        && ngx_memcmp(h->key.data, key, len) == 0);
            FUZZ_ASSERT(h->hash == (uint32_t) ngx_hash_key(key, len));

            hash = collide ? (h->hash & 3) : h->hash;

            ngx_shmtx_lock(&zone->shpool->mutex);
            node = ngx_http_scripting_gate_node_get(zone, &h->key, hash);

            if (node == NULL) {
                FUZZ_ASSERT(fuzz_all_pinned(zone));
                ngx_shmtx_unlock(&zone->shpool->mutex);
                pin = 0;
                break;
            }

            FUZZ_ASSERT(node->len == len);
            FUZZ_ASSERT(ngx_memcmp(node->data, key, len) == 0);
            FUZZ_ASSERT(node->node.key == hash);
            FUZZ_ASSERT(ngx_queue_head(&zone->sh->lru) == &node->lru);
            FUZZ_ASSERT(fuzz_lookup(zone, key, len, hash) == node);

            if (pin && fuzz_npins < FUZZ_TICKETS) {
                fuzz_pins[fuzz_npins].ticket =
                              ngx_http_scripting_gate_ticket_alloc(zone, node);

                if (fuzz_pins[fuzz_npins].ticket) {
                    fuzz_pins[fuzz_npins].node = node;
                    fuzz_pins[fuzz_npins].key = key;
                    fuzz_pins[fuzz_npins].len = len;
                    fuzz_npins++;
                }
            }

            ngx_shmtx_unlock(&zone->shpool->mutex);

            pin = 0;
            break;

        case 3:
            len = (p < last) ? *p++ % 32 : 0;
            len = ngx_min(len, (size_t) (last - p));

            limit = ngx_pnalloc(pool, len ? len : 1);
            if (limit == NULL) {
                abort();
            }

            ngx_memcpy(limit, p, len);
            p += len;

            ngx_memzero(&limit_cv, sizeof(ngx_http_complex_value_t));
            limit_cv.value.data = limit;
            limit_cv.value.len = len;

            gc->limit_cv = &limit_cv;
            break;

        case 4:
            gc->limit_cv = NULL;
            break;

        case 5:
            pin = 1;
            break;

        case 6:
            if (fuzz_npins) {
                fuzz_unpin(zone, (p < last ? *p++ : 0) % fuzz_npins);
            }

            break;

        case 7:
            fuzz_check_zone(zone);
            break;

        case 8:
            /* nginx -s reload: the new conf's zone takes the old one's */
            zone2 = ngx_pcalloc(pool, sizeof(ngx_http_scripting_gate_zone_t));
            if (zone2 == NULL) {
                abort();
            }

            shm_zone2 = shm_zone;
            shm_zone2.data = zone2;
            shm_zone2.shm.exists = 1;
            zone2->shm_zone = &shm_zone2;
            zone2->key.value = zone->key.value;

            FUZZ_ASSERT(ngx_http_scripting_gate_init_zone(&shm_zone2, zone)
                        == NGX_OK);
            FUZZ_ASSERT(zone2->sh == zone->sh
                        && zone2->shpool == zone->shpool);
            break;
        }

        fuzz_check_zone(zone);
    }

    /* tickets a worker still holds when it exits are given back */
    while (fuzz_npins > 1) {
        fuzz_unpin(zone, 0);
    }

    fuzz_npins = 0;
    ngx_http_scripting_gate_proc_unregister(zone);

    fuzz_check_zone(zone);
    FUZZ_ASSERT(zone->sh->active == 0 && zone->sh->queued == 0);
    FUZZ_ASSERT(ngx_queue_empty(&zone->sh->procs));

    ngx_destroy_pool(pool);

    return 0;
}
