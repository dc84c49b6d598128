
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Jobs: the store of async jobs in shared memory, and the jobs endpoint.
 *
 * Any worker answers for any job: the store is a zone of its own, an
 * rbtree by id and a queue oldest first, under the zone's slab mutex.  The
 * worker that accepted a job runs it and is named in it; it refers to its
 * job by id, never by pointer, since the record may be gone by the time a
 * callback ends.  A finished job keeps its result for "ttl", is "expired"
 * for as long again (its result freed, a 404 that says so), and is then
 * forgotten.  A job whose worker died is marked failed by the once-a-second
 * sweep of any other worker (kill(pid, 0) says ESRCH).
 *
 * A job belongs to its submitter: the SHA-1 of a salt of the store's and
 * the value "owner=" names (the Authorization header by default) is kept
 * with it, never the value, and the endpoint answers only a request with
 * the same value; any other gets the 404 of an unknown id.  A submitter
 * has "max_owner_jobs" jobs under way at most.  When the store is full, a
 * new job takes the room of an expired job first, then of the oldest
 * finished one (the submitter's own first): a job under way is never
 * dropped, so only then is the store full.
 */


#include "ngx_http_scripting_gate_async.h"
#include <ngx_sha1.h>
#include <jansson.h>
#include <sys/random.h>


#define NGX_HTTP_SCRIPTING_GATE_JOBS_SWEEP  1000

/* the jobs that one new job may make give their room */
#define NGX_HTTP_SCRIPTING_GATE_JOBS_EVICT  8

/* the workers running jobs that one sweep looks at */
#define NGX_HTTP_SCRIPTING_GATE_PIDS        64


static char *ngx_http_scripting_gate_jobs_owner_conf(ngx_conf_t *cf,
    ngx_http_scripting_gate_jobs_zone_t *jz, ngx_str_t *value);
static ngx_int_t ngx_http_scripting_gate_jobs_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_http_scripting_gate_job_t *ngx_http_scripting_gate_job_find(
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id);
static void ngx_http_scripting_gate_jobs_expire(
    ngx_http_scripting_gate_jobs_zone_t *jz, ngx_log_t *log);
static void ngx_http_scripting_gate_job_free(
    ngx_http_scripting_gate_jobs_zone_t *jz,
    ngx_http_scripting_gate_job_t *job);
static ngx_uint_t ngx_http_scripting_gate_jobs_under_way(
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *owner);
static ngx_uint_t ngx_http_scripting_gate_jobs_make_room(
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *owner);
static ngx_uint_t ngx_http_scripting_gate_job_owner_is(u_char *a, u_char *b);
static ngx_int_t ngx_http_scripting_gate_job_owned(ngx_http_request_t *r,
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id);
static void ngx_http_scripting_gate_jobs_sweep(ngx_event_t *ev);
static ngx_int_t ngx_http_scripting_gate_jobs_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_jobs_result(ngx_http_request_t *r,
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id);
static ngx_uint_t ngx_http_scripting_gate_jobs_header_ok(ngx_str_t *name,
    ngx_str_t *value);
static json_t *ngx_http_scripting_gate_job_time(uint64_t ms);
static uint64_t ngx_http_scripting_gate_jobs_now(void);


static ngx_str_t  ngx_http_scripting_gate_job_states[] = {
    ngx_string("queued"),
    ngx_string("running"),
    ngx_string("succeeded"),
    ngx_string("failed"),
    ngx_string("expired")
};


static ngx_str_t  ngx_http_scripting_gate_callback_states[] = {
    ngx_null_string,
    ngx_string("pending"),
    ngx_string("delivered"),
    ngx_string("failed")
};


static ngx_event_t   ngx_http_scripting_gate_jobs_sweep_event;
/* stands for a connection in the timer's debug lines, with fd -1 */
static ngx_connection_t  ngx_http_scripting_gate_jobs_conn;
static ngx_array_t  *ngx_http_scripting_gate_jobs_zones;

/* the tag of the jobs zones, apart from the gate's */
static ngx_uint_t    ngx_http_scripting_gate_jobs_tag;


/* scripting_async_zone zone=NAME:SIZE [ttl=T] [max_result=SIZE] [max_jobs=N]
 *                      [max_owner_jobs=N] [owner=VALUE]
 *                      [max_pending_body=SIZE] */

char *
ngx_http_scripting_gate_async_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_scripting_gate_async_main_conf_t *amcf = conf;

    ssize_t                               size, zone_size;
    ngx_int_t                             n;
    ngx_str_t                            *value, name, s;
    ngx_uint_t                            i;
    ngx_shm_zone_t                       *shm_zone;
    ngx_http_scripting_gate_jobs_zone_t  *jz, **jzp;

    value = cf->args->elts;

    jz = ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_jobs_zone_t));
    if (jz == NULL) {
        return NGX_CONF_ERROR;
    }

    jz->ttl = 600000;
    jz->max_result = 1024 * 1024;
    jz->max_jobs = NGX_MAX_UINT32_VALUE;
    jz->max_owner_jobs = 100;
    jz->max_pending_body = 32 * 1024 * 1024;

    name.len = 0;
    zone_size = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            if (ngx_http_scripting_gate_conf_zone(cf, &value[i], &name,
                                                  &zone_size)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            jz->ttl = ngx_parse_time(&s, 0);

            if (jz->ttl == (ngx_msec_t) NGX_ERROR || jz->ttl < 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid ttl \"%V\", it must be "
                                   "1s or more", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_result=", 11) == 0) {
            s.data = value[i].data + 11;
            s.len = value[i].len - 11;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_result \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            jz->max_result = size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_jobs=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);

            if (n <= 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_jobs \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            jz->max_jobs = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_owner_jobs=", 15) == 0) {
            n = ngx_atoi(value[i].data + 15, value[i].len - 15);

            if (n <= 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_owner_jobs \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            jz->max_owner_jobs = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_pending_body=", 17) == 0) {
            s.data = value[i].data + 17;
            s.len = value[i].len - 17;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_pending_body \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            jz->max_pending_body = size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "owner=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (ngx_http_scripting_gate_jobs_owner_conf(cf, jz, &s)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (jz->owner == NULL) {
        ngx_str_set(&s, "$http_authorization");

        if (ngx_http_scripting_gate_jobs_owner_conf(cf, jz, &s)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    shm_zone = ngx_shared_memory_add(cf, &name, zone_size,
                                     &ngx_http_scripting_gate_jobs_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_scripting_gate_jobs_init_zone;
    shm_zone->data = jz;
    jz->shm_zone = shm_zone;

    jzp = ngx_array_push(&amcf->jobs_zones);
    if (jzp == NULL) {
        return NGX_CONF_ERROR;
    }

    *jzp = jz;

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate_jobs_owner_conf(ngx_conf_t *cf,
    ngx_http_scripting_gate_jobs_zone_t *jz, ngx_str_t *value)
{
    ngx_http_compile_complex_value_t  ccv;

    jz->owner = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (jz->owner == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = jz->owner;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_scripting_gate_jobs_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_scripting_gate_jobs_zone_t  *ojz = data;

    size_t                                len;
    ngx_http_scripting_gate_jobs_zone_t  *jz;

    jz = shm_zone->data;

    if (ojz) {
        /* a reload: the jobs and their runs go on */
        jz->sh = ojz->sh;
        jz->shpool = ojz->shpool;
        return NGX_OK;
    }

    jz->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        jz->sh = jz->shpool->data;
        return NGX_OK;
    }

    jz->sh = ngx_slab_calloc(jz->shpool,
                             sizeof(ngx_http_scripting_gate_jobs_shctx_t));
    if (jz->sh == NULL) {
        return NGX_ERROR;
    }

    jz->shpool->data = jz->sh;

    /* owners' digests that a copy of the zone does not give away */
    if (getrandom(jz->sh->salt, NGX_HTTP_SCRIPTING_GATE_JOB_SALT_LEN, 0)
        != NGX_HTTP_SCRIPTING_GATE_JOB_SALT_LEN)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, ngx_errno,
                      "getrandom() failed");
        return NGX_ERROR;
    }

    ngx_rbtree_init(&jz->sh->rbtree, &jz->sh->sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&jz->sh->queue);

    len = sizeof(" in scripting_async_zone \"\"") + shm_zone->shm.name.len;

    jz->shpool->log_ctx = ngx_slab_alloc(jz->shpool, len);
    if (jz->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(jz->shpool->log_ctx, " in scripting_async_zone \"%V\"%Z",
                &shm_zone->shm.name);

    jz->shpool->log_nomem = 0;

    return NGX_OK;
}


/* the digest of the request's owner= value, the store's salt first */

ngx_int_t
ngx_http_scripting_gate_job_owner(ngx_http_request_t *r,
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *owner)
{
    ngx_str_t   value;
    ngx_sha1_t  sha1;

    if (ngx_http_complex_value(r, jz->owner, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, jz->sh->salt, NGX_HTTP_SCRIPTING_GATE_JOB_SALT_LEN);
    ngx_sha1_update(&sha1, value.data, value.len);
    ngx_sha1_final(owner, &sha1);

    return NGX_OK;
}


/* in a time that does not tell how much of the digest matched */

static ngx_uint_t
ngx_http_scripting_gate_job_owner_is(u_char *a, u_char *b)
{
    u_char      d;
    ngx_uint_t  i;

    d = 0;

    for (i = 0; i < NGX_HTTP_SCRIPTING_GATE_JOB_OWNER_LEN; i++) {
        d |= a[i] ^ b[i];
    }

    return d == 0;
}


/*
 * Stores a new job, queued; NGX_DECLINED when the store is full, NGX_BUSY
 * when the owner has max_owner_jobs jobs under way: nothing is accepted
 * that cannot be kept.  "id" receives its id.
 */

ngx_int_t
ngx_http_scripting_gate_job_create(ngx_http_scripting_gate_jobs_zone_t *jz,
    ngx_str_t *key, ngx_str_t *method, ngx_str_t *uri, ngx_str_t *callback,
    u_char *owner, u_char *id, ngx_log_t *log)
{
    u_char                          *p, raw[NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN
                                            / 2];
    size_t                           size;
    ngx_uint_t                       n;
    ngx_http_scripting_gate_job_t   *job;

    if (getrandom(raw, sizeof(raw), GRND_NONBLOCK) != (ssize_t) sizeof(raw)) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno, "getrandom() failed");
        return NGX_ERROR;
    }

    ngx_hex_dump(id, raw, sizeof(raw));

    size = sizeof(ngx_http_scripting_gate_job_t) + key->len + method->len
           + uri->len + callback->len;

    ngx_shmtx_lock(&jz->shpool->mutex);

    ngx_http_scripting_gate_jobs_expire(jz, log);

    n = ngx_http_scripting_gate_jobs_under_way(jz, owner);

    if (n >= jz->max_owner_jobs) {
        jz->sh->refused++;

        ngx_shmtx_unlock(&jz->shpool->mutex);

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "scripting_async: the submitter has %ui jobs under "
                      "way in \"%V\" (max_owner_jobs), the request is "
                      "refused", n, &jz->shm_zone->shm.name);

        return NGX_BUSY;
    }

    for (n = 0; /* void */; n++) {

        if (jz->sh->stored < jz->max_jobs) {
            job = ngx_slab_calloc_locked(jz->shpool, size);
            if (job) {
                break;
            }
        }

        if (n == NGX_HTTP_SCRIPTING_GATE_JOBS_EVICT
            || !ngx_http_scripting_gate_jobs_make_room(jz, owner))
        {
            goto full;
        }
    }

    ngx_memcpy(job->id, id, NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN);
    ngx_memcpy(job->owner, owner, NGX_HTTP_SCRIPTING_GATE_JOB_OWNER_LEN);
    job->sn.node.key = ngx_crc32_short(id, NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN);
    job->sn.str.data = job->id;
    job->sn.str.len = NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN;
    job->pid = ngx_pid;
    job->state = NGX_HTTP_SCRIPTING_GATE_JOB_QUEUED;
    job->created = ngx_http_scripting_gate_jobs_now();

    p = (u_char *) &job[1];

    /* an empty string may have no data at all */

    job->key.data = p;
    job->key.len = key->len;
    p = key->len ? ngx_cpymem(p, key->data, key->len) : p;

    job->method.data = p;
    job->method.len = method->len;
    p = ngx_cpymem(p, method->data, method->len);

    job->uri.data = p;
    job->uri.len = uri->len;
    p = ngx_cpymem(p, uri->data, uri->len);

    job->callback.data = p;
    job->callback.len = callback->len;

    if (callback->len) {
        ngx_memcpy(p, callback->data, callback->len);
    }

    if (callback->len) {
        job->cb_state = NGX_HTTP_SCRIPTING_GATE_CALLBACK_PENDING;
    }

    ngx_rbtree_insert(&jz->sh->rbtree, &job->sn.node);
    ngx_queue_insert_tail(&jz->sh->queue, &job->queue);

    jz->sh->stored++;
    jz->sh->queued++;
    jz->sh->accepted++;

    ngx_shmtx_unlock(&jz->shpool->mutex);

    if (n) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "scripting_async: %ui finished job%s forgotten to "
                      "make room in \"%V\"", n, n == 1 ? " was" : "s were",
                      &jz->shm_zone->shm.name);
    }

    return NGX_OK;

full:

    jz->sh->refused++;

    ngx_shmtx_unlock(&jz->shpool->mutex);

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "scripting_async: the job store \"%V\" is full, "
                  "the request is refused", &jz->shm_zone->shm.name);

    return NGX_DECLINED;
}


/* called with the mutex held */

static ngx_http_scripting_gate_job_t *
ngx_http_scripting_gate_job_find(ngx_http_scripting_gate_jobs_zone_t *jz,
    u_char *id)
{
    ngx_str_t  name;

    name.data = id;
    name.len = NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN;

    /* the job starts with its ngx_str_node_t */
    return (ngx_http_scripting_gate_job_t *)
               ngx_str_rbtree_lookup(&jz->sh->rbtree, &name,
                                     ngx_crc32_short(id, name.len));
}


/*
 * The job runs (again): "attempts" so far, and the status of the last
 * answer when one is to be retried (0 leaves it).
 */

void
ngx_http_scripting_gate_job_running(ngx_http_scripting_gate_jobs_zone_t *jz,
    u_char *id, ngx_uint_t attempts, ngx_uint_t status)
{
    ngx_http_scripting_gate_job_t  *job;

    ngx_shmtx_lock(&jz->shpool->mutex);

    job = ngx_http_scripting_gate_job_find(jz, id);

    if (job && job->state == NGX_HTTP_SCRIPTING_GATE_JOB_QUEUED) {
        job->state = NGX_HTTP_SCRIPTING_GATE_JOB_RUNNING;
        job->started = ngx_http_scripting_gate_jobs_now();
        jz->sh->queued--;
        jz->sh->running++;
    }

    if (job && job->state == NGX_HTTP_SCRIPTING_GATE_JOB_RUNNING) {
        job->attempts = attempts;

        if (status) {
            job->status = status;
        }
    }

    ngx_shmtx_unlock(&jz->shpool->mutex);
}


/*
 * The end of a run: succeeded or failed, with the upstream's answer when
 * there is one (status non-zero).  A result the zone has no room for turns
 * the job into a failure that says so.
 */

void
ngx_http_scripting_gate_job_finish(ngx_http_scripting_gate_jobs_zone_t *jz,
    u_char *id, ngx_uint_t state, ngx_uint_t status, ngx_str_t *reason,
    ngx_str_t *headers, ngx_str_t *body)
{
    u_char                         *result;
    ngx_http_scripting_gate_job_t  *job;

    static ngx_str_t  no_memory =
        ngx_string("no memory left in the job store for the result");

    ngx_shmtx_lock(&jz->shpool->mutex);

    job = ngx_http_scripting_gate_job_find(jz, id);

    if (job == NULL
        || job->state == NGX_HTTP_SCRIPTING_GATE_JOB_SUCCEEDED
        || job->state >= NGX_HTTP_SCRIPTING_GATE_JOB_FAILED)
    {
        /* the sweep gave it up already */
        ngx_shmtx_unlock(&jz->shpool->mutex);
        return;
    }

    result = NULL;

    if (status) {
        result = ngx_slab_alloc_locked(jz->shpool,
                                       headers->len + body->len + 1);

        if (result == NULL) {
            state = NGX_HTTP_SCRIPTING_GATE_JOB_FAILED;
            reason = &no_memory;

        } else {
            ngx_memcpy(ngx_cpymem(result, headers->data, headers->len),
                       body->data, body->len);
            job->result_headers = headers->len;
            job->result_body = body->len;
        }
    }

    if (job->state == NGX_HTTP_SCRIPTING_GATE_JOB_QUEUED) {
        jz->sh->queued--;

    } else {
        jz->sh->running--;
    }

    job->result = result;
    job->state = state;
    job->status = status;
    job->finished = ngx_http_scripting_gate_jobs_now();

    if (job->started == 0) {
        job->started = job->finished;
    }

    job->reason_len = ngx_min(reason->len,
                              NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN);

    if (job->reason_len) {
        ngx_memcpy(job->reason, reason->data, job->reason_len);
    }

    if (state == NGX_HTTP_SCRIPTING_GATE_JOB_SUCCEEDED) {
        jz->sh->succeeded++;

    } else {
        jz->sh->failed++;
    }

    ngx_shmtx_unlock(&jz->shpool->mutex);
}


void
ngx_http_scripting_gate_job_callback(ngx_http_scripting_gate_jobs_zone_t *jz,
    u_char *id, ngx_uint_t state, ngx_uint_t status, ngx_uint_t attempts)
{
    ngx_http_scripting_gate_job_t  *job;

    ngx_shmtx_lock(&jz->shpool->mutex);

    job = ngx_http_scripting_gate_job_find(jz, id);

    if (job) {
        job->cb_state = state;
        job->cb_status = status;
        job->cb_attempts = attempts;
    }

    if (state == NGX_HTTP_SCRIPTING_GATE_CALLBACK_DELIVERED) {
        jz->sh->callbacks_delivered++;

    } else if (state == NGX_HTTP_SCRIPTING_GATE_CALLBACK_FAILED) {
        jz->sh->callbacks_failed++;
    }

    ngx_shmtx_unlock(&jz->shpool->mutex);
}


/*
 * Finished jobs past their ttl expire and give back their result; expired
 * ones are forgotten after as long again.  Called with the mutex held.
 */

static void
ngx_http_scripting_gate_jobs_expire(ngx_http_scripting_gate_jobs_zone_t *jz,
    ngx_log_t *log)
{
    uint64_t                        now;
    ngx_queue_t                    *q, *next;
    ngx_http_scripting_gate_job_t  *job;

    now = ngx_http_scripting_gate_jobs_now();

    for (q = ngx_queue_head(&jz->sh->queue);
         q != ngx_queue_sentinel(&jz->sh->queue);
         q = next)
    {
        next = ngx_queue_next(q);
        job = ngx_queue_data(q, ngx_http_scripting_gate_job_t, queue);

        if (job->finished == 0 || now < job->finished + jz->ttl) {
            continue;
        }

        if (job->state != NGX_HTTP_SCRIPTING_GATE_JOB_EXPIRED) {
            job->state = NGX_HTTP_SCRIPTING_GATE_JOB_EXPIRED;
            jz->sh->expired++;

            if (job->result) {
                ngx_slab_free_locked(jz->shpool, job->result);
                job->result = NULL;
            }
        }

        if (now >= job->finished + 2 * jz->ttl) {
            ngx_http_scripting_gate_job_free(jz, job);
        }
    }
}


static void
ngx_http_scripting_gate_job_free(ngx_http_scripting_gate_jobs_zone_t *jz,
    ngx_http_scripting_gate_job_t *job)
{
    if (job->result) {
        ngx_slab_free_locked(jz->shpool, job->result);
    }

    ngx_rbtree_delete(&jz->sh->rbtree, &job->sn.node);
    ngx_queue_remove(&job->queue);
    jz->sh->stored--;

    ngx_slab_free_locked(jz->shpool, job);
}


/* the owner's jobs queued or running; called with the mutex held */

static ngx_uint_t
ngx_http_scripting_gate_jobs_under_way(ngx_http_scripting_gate_jobs_zone_t *jz,
    u_char *owner)
{
    ngx_uint_t                      n;
    ngx_queue_t                    *q;
    ngx_http_scripting_gate_job_t  *job;

    n = 0;

    for (q = ngx_queue_head(&jz->sh->queue);
         q != ngx_queue_sentinel(&jz->sh->queue);
         q = ngx_queue_next(q))
    {
        job = ngx_queue_data(q, ngx_http_scripting_gate_job_t, queue);

        if (job->finished == 0
            && ngx_http_scripting_gate_job_owner_is(job->owner, owner))
        {
            n++;
        }
    }

    return n;
}


/*
 * Forgets one job to make room for the owner's new one: the oldest
 * expired, else the owner's oldest finished, else the oldest finished.
 * 0: every job is under way.  Called with the mutex held.
 */

static ngx_uint_t
ngx_http_scripting_gate_jobs_make_room(ngx_http_scripting_gate_jobs_zone_t *jz,
    u_char *owner)
{
    ngx_queue_t                    *q;
    ngx_http_scripting_gate_job_t  *job, *own, *any;

    own = NULL;
    any = NULL;

    for (q = ngx_queue_head(&jz->sh->queue);
         q != ngx_queue_sentinel(&jz->sh->queue);
         q = ngx_queue_next(q))
    {
        job = ngx_queue_data(q, ngx_http_scripting_gate_job_t, queue);

        if (job->finished == 0) {
            continue;
        }

        if (job->state == NGX_HTTP_SCRIPTING_GATE_JOB_EXPIRED) {
            any = job;
            own = NULL;
            break;
        }

        if (own == NULL
            && ngx_http_scripting_gate_job_owner_is(job->owner, owner))
        {
            own = job;
        }

        if (any == NULL) {
            any = job;
        }
    }

    job = own ? own : any;

    if (job == NULL) {
        return 0;
    }

    ngx_http_scripting_gate_job_free(jz, job);

    return 1;
}


ngx_int_t
ngx_http_scripting_gate_jobs_init_process(ngx_cycle_t *cycle)
{
    ngx_event_t                          *ev;
    ngx_http_scripting_gate_async_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                         ngx_http_scripting_gate_async_module);

    if (amcf == NULL
        || amcf->jobs_zones.nelts == 0
        || ngx_process != NGX_PROCESS_WORKER)
    {
        return NGX_OK;
    }

    ngx_http_scripting_gate_jobs_zones = &amcf->jobs_zones;

    ev = &ngx_http_scripting_gate_jobs_sweep_event;
    ev->handler = ngx_http_scripting_gate_jobs_sweep;
    ngx_http_scripting_gate_jobs_conn.fd = (ngx_socket_t) -1;
    ev->data = &ngx_http_scripting_gate_jobs_conn;
    ev->log = cycle->log;
    ev->cancelable = 1;

    ngx_add_timer(ev, NGX_HTTP_SCRIPTING_GATE_JOBS_SWEEP);

    return NGX_OK;
}


/* once a second: expiry, and the jobs of workers that died */

static void
ngx_http_scripting_gate_jobs_sweep(ngx_event_t *ev)
{
    ngx_pid_t                             pids[NGX_HTTP_SCRIPTING_GATE_PIDS];
    ngx_uint_t                            i, j, n, dead;
    ngx_queue_t                          *q;
    ngx_http_scripting_gate_job_t        *job;
    ngx_http_scripting_gate_jobs_zone_t **jzp, *jz;

    jzp = ngx_http_scripting_gate_jobs_zones->elts;

    for (i = 0; i < ngx_http_scripting_gate_jobs_zones->nelts; i++) {
        jz = jzp[i];

        /* the workers that run jobs, asked about once the mutex is free */

        n = 0;

        ngx_shmtx_lock(&jz->shpool->mutex);

        ngx_http_scripting_gate_jobs_expire(jz, ev->log);

        for (q = ngx_queue_head(&jz->sh->queue);
             q != ngx_queue_sentinel(&jz->sh->queue)
             && n < NGX_HTTP_SCRIPTING_GATE_PIDS;
             q = ngx_queue_next(q))
        {
            job = ngx_queue_data(q, ngx_http_scripting_gate_job_t, queue);

            if (job->finished || job->pid == ngx_pid) {
                continue;
            }

            for (j = 0; j < n && pids[j] != job->pid; j++) { /* void */ }

            if (j == n) {
                pids[n++] = job->pid;
            }
        }

        ngx_shmtx_unlock(&jz->shpool->mutex);

        dead = 0;

        for (j = 0; j < n; j++) {
            if (kill(pids[j], 0) == -1 && ngx_errno == NGX_ESRCH) {
                pids[dead++] = pids[j];
            }
        }

        if (dead == 0) {
            continue;
        }

        ngx_shmtx_lock(&jz->shpool->mutex);

        for (q = ngx_queue_head(&jz->sh->queue);
             q != ngx_queue_sentinel(&jz->sh->queue);
             q = ngx_queue_next(q))
        {
            job = ngx_queue_data(q, ngx_http_scripting_gate_job_t, queue);

            if (job->finished) {
                continue;
            }

            for (j = 0; j < dead && pids[j] != job->pid; j++) { /* void */ }

            if (j == dead) {
                continue;
            }

            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "scripting_async: job %*s failed, "
                          "its worker %P exited",
                          (size_t) NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN,
                          job->id, job->pid);

            if (job->state == NGX_HTTP_SCRIPTING_GATE_JOB_QUEUED) {
                jz->sh->queued--;

            } else {
                jz->sh->running--;
            }

            job->state = NGX_HTTP_SCRIPTING_GATE_JOB_FAILED;
            job->finished = ngx_http_scripting_gate_jobs_now();
            job->reason_len = ngx_sprintf(job->reason,
                                          "the worker process running the "
                                          "job (pid %P) exited", job->pid)
                              - job->reason;

            if (job->cb_state == NGX_HTTP_SCRIPTING_GATE_CALLBACK_PENDING) {
                job->cb_state = NGX_HTTP_SCRIPTING_GATE_CALLBACK_FAILED;
                jz->sh->callbacks_failed++;
            }

            jz->sh->failed++;
        }

        ngx_shmtx_unlock(&jz->shpool->mutex);
    }

    ngx_add_timer(ev, NGX_HTTP_SCRIPTING_GATE_JOBS_SWEEP);
}


/*
 * The job's state as JSON, in "pool"; NGX_DECLINED: no such job.  Links
 * are "prefix" followed by the id.  *state receives the job's state.
 */

ngx_int_t
ngx_http_scripting_gate_job_json(ngx_pool_t *pool,
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id, ngx_str_t *prefix,
    ngx_str_t *out, ngx_uint_t *state)
{
    char                           *s;
    u_char                         *link, *p;
    json_t                         *o, *cb;
    ngx_str_t                       key, method, uri, callback, reason;
    ngx_http_scripting_gate_job_t  *job, copy;

    /* copied out under the mutex, shown once it is unlocked */

    ngx_shmtx_lock(&jz->shpool->mutex);

    job = ngx_http_scripting_gate_job_find(jz, id);

    if (job == NULL) {
        ngx_shmtx_unlock(&jz->shpool->mutex);
        return NGX_DECLINED;
    }

    copy = *job;

    p = ngx_pnalloc(pool, job->key.len + job->method.len + job->uri.len
                          + job->callback.len + job->reason_len + 1);

    if (p) {
        key.data = p;
        key.len = job->key.len;
        p = ngx_cpymem(p, job->key.data, key.len);

        method.data = p;
        method.len = job->method.len;
        p = ngx_cpymem(p, job->method.data, method.len);

        uri.data = p;
        uri.len = job->uri.len;
        p = ngx_cpymem(p, job->uri.data, uri.len);

        callback.data = p;
        callback.len = job->callback.len;
        p = ngx_cpymem(p, job->callback.data, callback.len);

        reason.data = p;
        reason.len = job->reason_len;
        ngx_memcpy(p, job->reason, reason.len);
    }

    ngx_shmtx_unlock(&jz->shpool->mutex);

    /* a key or a URI may have any bytes: shown as valid UTF-8 */

    if (p == NULL
        || ngx_http_scripting_gate_utf8(pool, &key, 1) != NGX_OK
        || ngx_http_scripting_gate_utf8(pool, &uri, 0) != NGX_OK
        || ngx_http_scripting_gate_utf8(pool, &method, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_scripting_gate_json_use_pool(pool);

    o = json_pack("{s:s%, s:s, s:i, s:s%, s:s%, s:s%}",
                  "id", (char *) copy.id,
                  (size_t) NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN,
                  "state",
                  (char *) ngx_http_scripting_gate_job_states[copy.state].data,
                  "attempts", (json_int_t) copy.attempts,
                  "key", (char *) key.data, key.len,
                  "method", (char *) method.data, method.len,
                  "uri", (char *) uri.data, uri.len);

    cb = NULL;

    if (o && callback.len) {
        /* the URL was checked: printable ASCII only */
        cb = json_pack("{s:s%, s:s, s:i}",
                       "url", (char *) callback.data, callback.len,
                       "state",
                       (char *) ngx_http_scripting_gate_callback_states[
                                                       copy.cb_state].data,
                       "attempts", (json_int_t) copy.cb_attempts);
    }

    if (o == NULL || (callback.len && cb == NULL)) {
        ngx_http_scripting_gate_json_use_pool(NULL);
        return NGX_ERROR;
    }

    json_object_set_new(o, "reason",
                        reason.len ? json_stringn((char *) reason.data,
                                                  reason.len)
                                   : json_null());

    json_object_set_new(o, "status", copy.status ? json_integer(copy.status)
                                                 : json_null());
    json_object_set_new(o, "created",
                        ngx_http_scripting_gate_job_time(copy.created));
    json_object_set_new(o, "started",
                        ngx_http_scripting_gate_job_time(copy.started));
    json_object_set_new(o, "finished",
                        ngx_http_scripting_gate_job_time(copy.finished));
    json_object_set_new(o, "expires",
                        ngx_http_scripting_gate_job_time(
                            copy.finished ? copy.finished + jz->ttl : 0));

    link = ngx_pnalloc(pool, prefix->len + NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN
                             + sizeof("/result") - 1);
    if (link == NULL) {
        ngx_http_scripting_gate_json_use_pool(NULL);
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(link, prefix->data, prefix->len), copy.id,
               NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN);

    json_object_set_new(o, "location",
                        json_stringn((char *) link, prefix->len
                                     + NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN));

    if (copy.result) {
        ngx_memcpy(link + prefix->len + NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN,
                   "/result", sizeof("/result") - 1);
        json_object_set_new(o, "result",
                            json_stringn((char *) link,
                                         prefix->len
                                         + NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN
                                         + sizeof("/result") - 1));

    } else {
        json_object_set_new(o, "result", json_null());
    }

    if (cb) {
        json_object_set_new(cb, "status",
                            copy.cb_status ? json_integer(copy.cb_status)
                                           : json_null());
    }

    json_object_set_new(o, "callback", cb ? cb : json_null());

    s = json_dumps(o, JSON_COMPACT|JSON_PRESERVE_ORDER);

    ngx_http_scripting_gate_json_use_pool(NULL);

    if (s == NULL) {
        return NGX_ERROR;
    }

    out->data = (u_char *) s;
    out->len = ngx_strlen(s);

    if (state) {
        *state = copy.state;
    }

    return NGX_OK;
}


static json_t *
ngx_http_scripting_gate_job_time(uint64_t ms)
{
    u_char     buf[sizeof("1970-01-01T00:00:00.000Z")];
    ngx_tm_t   tm;

    if (ms == 0) {
        return json_null();
    }

    ngx_gmtime((time_t) (ms / 1000), &tm);

    ngx_sprintf(buf, "%4d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                (int) (ms % 1000));

    return json_stringn((char *) buf, sizeof(buf) - 1);
}


static uint64_t
ngx_http_scripting_gate_jobs_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/* the store's figures, for the status endpoint */

void
ngx_http_scripting_gate_jobs_figures(ngx_http_scripting_gate_jobs_zone_t *jz,
    ngx_http_scripting_gate_jobs_shctx_t *figures)
{
    ngx_shmtx_lock(&jz->shpool->mutex);
    *figures = *jz->sh;
    ngx_shmtx_unlock(&jz->shpool->mutex);
}


/* the zone of that name, declared before or after */

ngx_shm_zone_t *
ngx_http_scripting_gate_jobs_zone(ngx_conf_t *cf, ngx_str_t *name)
{
    return ngx_shared_memory_add(cf, name, 0,
                                 &ngx_http_scripting_gate_jobs_tag);
}


/* scripting_async_jobs zone=NAME */

char *
ngx_http_scripting_gate_async_jobs(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_scripting_gate_async_loc_conf_t *alcf = conf;

    ngx_str_t                 *value, name;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;

    if (alcf->jobs) {
        return "is duplicate";
    }

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data + 5;
    name.len = value[1].len - 5;

    alcf->jobs = ngx_http_scripting_gate_jobs_zone(cf, &name);
    if (alcf->jobs == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_scripting_gate_jobs_handler;

    /* the endpoint does not inherit scripting_async: a poll is no job */
    if (alcf->async == NGX_CONF_UNSET_PTR) {
        alcf->async = NULL;
    }

    return NGX_CONF_OK;
}


/*
 * GET <jobs location>/<id>: the job as JSON (404 when unknown, or expired
 * with its state); GET <jobs location>/<id>/result: the upstream's answer
 * as it came.
 */

static ngx_int_t
ngx_http_scripting_gate_jobs_handler(ngx_http_request_t *r)
{
    u_char                              *id, *end, *p;
    ngx_int_t                            rc;
    ngx_str_t                            body, prefix;
    ngx_uint_t                           result, state;
    ngx_http_scripting_gate_async_loc_conf_t  *alcf;

    static ngx_str_t  not_found = ngx_string(
        "{\"message\":\"no such job\",\"code\":\"not.found\",\"status\":404}");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_async_module);

    end = r->uri.data + r->uri.len;
    result = 0;

    if (r->uri.len > sizeof("/result") - 1
        && ngx_strncmp(end - (sizeof("/result") - 1), "/result",
                       sizeof("/result") - 1)
           == 0)
    {
        result = 1;
        end -= sizeof("/result") - 1;
    }

    if (end - r->uri.data < NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN + 1
        || end[- NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN - 1] != '/')
    {
        return ngx_http_scripting_gate_jobs_send(r, NGX_HTTP_NOT_FOUND,
                                                 &not_found);
    }

    id = end - NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN;

    for (p = id; p < end; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return ngx_http_scripting_gate_jobs_send(r, NGX_HTTP_NOT_FOUND,
                                                     &not_found);
        }
    }

    /* another's job, or an unknown one: the same answer */

    rc = ngx_http_scripting_gate_job_owned(r, alcf->jobs->data, id);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_scripting_gate_jobs_send(r, NGX_HTTP_NOT_FOUND,
                                                 &not_found);
    }

    if (result) {
        return ngx_http_scripting_gate_jobs_result(r, alcf->jobs->data, id);
    }

    prefix.data = r->uri.data;
    prefix.len = id - r->uri.data;

    rc = ngx_http_scripting_gate_job_json(r->pool, alcf->jobs->data, id,
                                          &prefix, &body, &state);

    if (rc == NGX_DECLINED) {
        return ngx_http_scripting_gate_jobs_send(r, NGX_HTTP_NOT_FOUND,
                                                 &not_found);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_scripting_gate_jobs_send(r,
                                  state == NGX_HTTP_SCRIPTING_GATE_JOB_EXPIRED
                                  ? NGX_HTTP_NOT_FOUND : NGX_HTTP_OK,
                                  &body);
}


/* NGX_OK: the job is there and is the request's owner's */

static ngx_int_t
ngx_http_scripting_gate_job_owned(ngx_http_request_t *r,
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id)
{
    u_char                          owner[
                                        NGX_HTTP_SCRIPTING_GATE_JOB_OWNER_LEN];
    ngx_uint_t                      same;
    ngx_http_scripting_gate_job_t  *job;

    if (ngx_http_scripting_gate_job_owner(r, jz, owner) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&jz->shpool->mutex);

    job = ngx_http_scripting_gate_job_find(jz, id);
    same = job && ngx_http_scripting_gate_job_owner_is(job->owner, owner);

    ngx_shmtx_unlock(&jz->shpool->mutex);

    return same ? NGX_OK : NGX_DECLINED;
}


/*
 * The upstream's answer, replayed: its status, its headers (but those of
 * the connection, and Content-Length, which is ours; those the location's
 * proxy hides were not stored), its body.  A job
 * still under way answers 202 with its state; one that failed without an
 * answer, 502 with its state.
 */

static ngx_int_t
ngx_http_scripting_gate_jobs_result(ngx_http_request_t *r,
    ngx_http_scripting_gate_jobs_zone_t *jz, u_char *id)
{
    u_char                         *p, *last, *colon, *eol, *data;
    ngx_int_t                       rc;
    ngx_str_t                       prefix, body, name, value;
    ngx_uint_t                      status, state;
    ngx_table_elt_t                *h;
    ngx_http_scripting_gate_job_t  *job;

    status = 0;
    data = NULL;
    body.len = 0;
    prefix.len = 0;

    ngx_shmtx_lock(&jz->shpool->mutex);

    job = ngx_http_scripting_gate_job_find(jz, id);

    if (job && job->result) {
        status = job->status;
        prefix.len = job->result_headers;
        body.len = job->result_body;

        data = ngx_pnalloc(r->pool, prefix.len + body.len + 1);

        if (data) {
            ngx_memcpy(data, job->result, prefix.len + body.len);
        }
    }

    ngx_shmtx_unlock(&jz->shpool->mutex);

    if (status == 0) {
        /* not yet, or never: the job's own state says which */
        prefix.data = r->uri.data;
        prefix.len = id - r->uri.data;

        rc = ngx_http_scripting_gate_job_json(r->pool, jz, id, &prefix, &body,
                                              &state);
        if (rc == NGX_DECLINED) {
            ngx_str_set(&body, "{\"message\":\"no such job\","
                               "\"code\":\"not.found\",\"status\":404}");
            return ngx_http_scripting_gate_jobs_send(r, NGX_HTTP_NOT_FOUND,
                                                     &body);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        switch (state) {
        case NGX_HTTP_SCRIPTING_GATE_JOB_QUEUED:
        case NGX_HTTP_SCRIPTING_GATE_JOB_RUNNING:
            status = NGX_HTTP_ACCEPTED;
            break;
        case NGX_HTTP_SCRIPTING_GATE_JOB_EXPIRED:
            status = NGX_HTTP_NOT_FOUND;
            break;
        default:
            status = NGX_HTTP_BAD_GATEWAY;
        }

        return ngx_http_scripting_gate_jobs_send(r, status, &body);
    }

    if (data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* "Name: value\r\n" lines, as the upstream sent them */

    p = data;
    last = data + prefix.len;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        colon = ngx_strlchr(p, eol, ':');

        if (colon) {
            name.data = p;
            name.len = colon - p;

            value.data = colon + 1;
            value.len = eol - value.data;

            while (value.len && (*value.data == ' ' || *value.data == '\t')) {
                value.data++;
                value.len--;
            }

            while (value.len && (value.data[value.len - 1] == '\r'
                                 || value.data[value.len - 1] == ' '))
            {
                value.len--;
            }

            if (!ngx_http_scripting_gate_jobs_header_ok(&name, &value)) {
                p = eol + 1;
                continue;
            }

            if (name.len == sizeof("Content-Type") - 1
                && ngx_strncasecmp(name.data, (u_char *) "Content-Type",
                                   name.len) == 0)
            {
                r->headers_out.content_type = value;
                r->headers_out.content_type_len = value.len;

            } else {
                h = ngx_list_push(&r->headers_out.headers);
                if (h == NULL) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                h->hash = 1;
                h->key = name;
                h->value = value;
#if (nginx_version >= 1023000)
                h->next = NULL;
#endif

                /* stored with proxy_pass_header: nginx adds no other */

                if (name.len == sizeof("Date") - 1
                    && ngx_strncasecmp(name.data, (u_char *) "Date",
                                       name.len) == 0)
                {
                    r->headers_out.date = h;

                } else if (name.len == sizeof("Server") - 1
                           && ngx_strncasecmp(name.data, (u_char *) "Server",
                                              name.len) == 0)
                {
                    r->headers_out.server = h;
                }
            }
        }

        p = eol + 1;
    }

    body.data = data + prefix.len;

    return ngx_http_scripting_gate_jobs_send(r, status, &body);
}


/*
 * A replayed header: a token for a name, no control characters in the
 * value, and none of those that belong to the upstream connection.
 */

static ngx_uint_t
ngx_http_scripting_gate_jobs_header_ok(ngx_str_t *name, ngx_str_t *value)
{
    u_char      c;
    ngx_uint_t  i;

    static u_char  token[] =
        "!#$%&'*+-.^_`|~0123456789"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    if (name->len == 0 || ngx_http_scripting_gate_hop_by_hop(name)) {
        return 0;
    }

    for (i = 0; i < name->len; i++) {
        if (ngx_strlchr(token, token + sizeof(token) - 1, name->data[i])
            == NULL)
        {
            return 0;
        }
    }

    for (i = 0; i < value->len; i++) {
        c = value->data[i];

        if ((c < ' ' && c != '\t') || c == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* an answer of the jobs' own, JSON unless a replayed result says */

ngx_int_t
ngx_http_scripting_gate_jobs_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    static ngx_str_t  no_store = ngx_string("no-store");

    /* a state that changes, or a result that goes */
    if (ngx_http_scripting_gate_add_header(r, "Cache-Control", &no_store)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_scripting_gate_send_json(r, status, body);
}
