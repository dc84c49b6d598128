
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The gate module: scripting_gate_zone, scripting_gate and their kin, the
 * request path of the gate (rewrite phase for bodies that keys are read
 * from, preaccess phase for the gate itself), local rejections, the
 * variables, and the gate API's request side (gate.h) for the other
 * modules of the .so.
 */


#include "ngx_http_scripting_gate_module.h"
#include "ngx_http_scripting_gate_shm.h"
#include "ngx_http_scripting_gate_util.h"
#include "ngx_http_scripting_gate_redis.h"
#include <ngx_md5.h>
#include <ngx_sha1.h>


/* the number variables */
#define NGX_HTTP_SCRIPTING_GATE_VAR_WAIT   0
#define NGX_HTTP_SCRIPTING_GATE_VAR_LIMIT  1


static ngx_int_t ngx_http_scripting_gate_rewrite_handler(
    ngx_http_request_t *r);
static void ngx_http_scripting_gate_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_preaccess_handler(
    ngx_http_request_t *r);
static void ngx_http_scripting_gate_resume(ngx_http_scripting_gate_t *g,
    ngx_int_t rc);
static ngx_int_t ngx_http_scripting_gate_prepare_hold(ngx_http_request_t *r,
    ngx_http_scripting_gate_conf_t *gc, ngx_http_scripting_gate_hold_t *h,
    ngx_pool_t *pool);
static ngx_int_t ngx_http_scripting_gate_digest_key(ngx_pool_t *pool,
    ngx_str_t *key);
static ngx_int_t ngx_http_scripting_gate_long_key(ngx_http_request_t *r,
    ngx_http_scripting_gate_zone_t *zone, ngx_str_t *key);
static ngx_int_t ngx_http_scripting_gate_passed(ngx_http_scripting_gate_t *g,
    ngx_http_scripting_gate_hold_t *h, ngx_int_t rc);
static void ngx_http_scripting_gate_held(ngx_http_scripting_gate_hold_t *h,
    ngx_int_t rc);
static ngx_int_t ngx_http_scripting_gate_header_filter(ngx_http_request_t *r);
static void ngx_http_scripting_gate_cleanup(void *data);
static ngx_int_t ngx_http_scripting_gate_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_scripting_gate_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_scripting_gate_number_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static void *ngx_http_scripting_gate_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_scripting_gate_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_scripting_gate_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_scripting_gate_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_scripting_gate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_scripting_gate_parse(ngx_conf_t *cf,
    ngx_http_scripting_gate_conf_t *gc, ngx_str_t *value);
static char *ngx_http_scripting_gate_parse_limit(ngx_conf_t *cf,
    ngx_http_scripting_gate_conf_t *gc, ngx_str_t *value);
static char *ngx_http_scripting_gate_parse_rate(ngx_conf_t *cf,
    ngx_http_scripting_gate_conf_t *gc, ngx_str_t *value);
static ngx_int_t ngx_http_scripting_gate_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_scripting_gate_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_scripting_gate_init_process(ngx_cycle_t *cycle);
static void ngx_http_scripting_gate_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_scripting_gate_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_scripting_gate_status_bounds = {
    ngx_conf_check_num_bounds, 400, 599
};


static ngx_str_t  ngx_http_scripting_gate_status_names[] = {
    ngx_null_string,
    ngx_string("PASSED"),
    ngx_string("QUEUED"),
    ngx_string("REJECTED"),
    ngx_string("TIMEOUT"),
    ngx_string("DRY_RUN"),
    ngx_string("NO_MEMORY")
};


static ngx_command_t  ngx_http_scripting_gate_commands[] = {

    { ngx_string("scripting_gate_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_scripting_gate_zone,
      0,
      0,
      NULL },

    { ngx_string("scripting_gate_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_scripting_gate_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_scripting_gate_main_conf_t, redis),
      NULL },

    { ngx_string("scripting_gate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_scripting_gate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("scripting_gate_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_scripting_gate_loc_conf_t, status_code),
      &ngx_http_scripting_gate_status_bounds },

    { ngx_string("scripting_gate_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_scripting_gate_loc_conf_t, dry_run),
      NULL },

    { ngx_string("scripting_gate_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_scripting_gate_loc_conf_t, log_level),
      &ngx_http_scripting_gate_log_levels },

    { ngx_string("scripting_json_var"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_scripting_gate_json_var,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("scripting_json_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_scripting_gate_loc_conf_t, json_max_size),
      NULL },

    { ngx_string("scripting_json_max_memory"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_scripting_gate_loc_conf_t, json_max_memory),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_scripting_gate_module_ctx = {
    ngx_http_scripting_gate_add_variables, /* preconfiguration */
    ngx_http_scripting_gate_init,          /* postconfiguration */

    ngx_http_scripting_gate_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_scripting_gate_create_loc_conf, /* create location configuration */
    ngx_http_scripting_gate_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_scripting_gate_module = {
    NGX_MODULE_V1,
    &ngx_http_scripting_gate_module_ctx,   /* module context */
    ngx_http_scripting_gate_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_scripting_gate_init_process,  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_scripting_gate_exit_process,  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_scripting_gate_vars[] = {

    { ngx_string("scripting_gate_status"), NULL,
      ngx_http_scripting_gate_status_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("scripting_gate_key"), NULL,
      ngx_http_scripting_gate_key_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("scripting_gate_wait"), NULL,
      ngx_http_scripting_gate_number_variable,
      NGX_HTTP_SCRIPTING_GATE_VAR_WAIT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("scripting_gate_limit"), NULL,
      ngx_http_scripting_gate_number_variable,
      NGX_HTTP_SCRIPTING_GATE_VAR_LIMIT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/* the modules of the .so that take a request over before the gate */
ngx_http_scripting_gate_defer_pt  ngx_http_scripting_gate_defer;


/*
 * Rewrite phase: a key may be built with "set" from scripting_json_var
 * variables, so a gated location reads the body before "set" runs (the
 * handlers of a phase run in reverse order of registration, and this one
 * is registered after the rewrite module's).
 */

static ngx_int_t
ngx_http_scripting_gate_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    if (glcf->gates == NULL || glcf->gates->nelts == 0) {
        return NGX_DECLINED;
    }

    return ngx_http_scripting_gate_read_json_body(r);
}


/*
 * For the rewrite phase of the modules that work on a request's body, when
 * scripting_json_var variables may be read from it: it is read now.
 */

ngx_int_t
ngx_http_scripting_gate_read_json_body(ngx_http_request_t *r)
{
    if (r != r->main
        || r->request_body
        || (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked))
    {
        return NGX_DECLINED;
    }

    return ngx_http_scripting_gate_read_body(r);
}


/*
 * Whether scripting_json_var is used: the modules register their rewrite
 * phase handlers only then, so that nothing is spent on it otherwise.
 */

ngx_uint_t
ngx_http_scripting_gate_json_vars(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_scripting_gate_module);

    return gmcf->json_vars.nelts;
}


/*
 * The phase handlers of a module that works on request bodies: its
 * precontent handler, and its rewrite handler when scripting_json_var
 * variables may need the body before "set".
 */

ngx_int_t
ngx_http_scripting_gate_add_handlers(ngx_conf_t *cf,
    ngx_http_handler_pt rewrite, ngx_http_handler_pt precontent)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (ngx_http_scripting_gate_json_vars(cf)) {
        h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = rewrite;
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = precontent;

    return NGX_OK;
}


/*
 * Reads the whole request body once, for the key and for every attempt;
 * NGX_DECLINED when it is there, NGX_DONE when the phases resume later.
 */

ngx_int_t
ngx_http_scripting_gate_read_body(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_scripting_gate_ctx_t  *ctx;

    ctx = ngx_http_scripting_gate_get_ctx(r, 1);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->body_ready) {
        return NGX_DECLINED;
    }

    rc = ngx_http_read_client_request_body(r,
                                         ngx_http_scripting_gate_body_handler);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    /* the reference that reading the body took */
    ngx_http_finalize_request(r, NGX_DONE);

    if (ctx->body_ready) {
        return NGX_DECLINED;
    }

    ctx->body_waiting = 1;

    return NGX_DONE;
}


static void
ngx_http_scripting_gate_body_handler(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_ctx_t  *ctx;

    ctx = ngx_http_scripting_gate_get_ctx(r, 0);
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->body_ready = 1;

    if (ctx->body_waiting) {
        ctx->body_waiting = 0;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
    }
}


static ngx_int_t
ngx_http_scripting_gate_preaccess_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_http_scripting_gate_t           *g;
    ngx_http_scripting_gate_loc_conf_t  *glcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    /*
     * an async submission is answered at once, its job gated when it runs;
     * a retried request is gated attempt by attempt
     */
    if (glcf->gates == NULL
        || glcf->gates->nelts == 0
        || (ngx_http_scripting_gate_defer && ngx_http_scripting_gate_defer(r)))
    {
        return NGX_DECLINED;
    }

    g = ngx_http_scripting_gate_get(r, 1);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (g->status != NGX_HTTP_SCRIPTING_GATE_NONE) {
        /* resumed after the queue, or after an internal redirect */
        return NGX_DECLINED;
    }

    rc = ngx_http_scripting_gate_prepare(r, g, r->pool);

    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? NGX_DECLINED
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_scripting_gate_acquire(g);

    if (rc == NGX_OK) {
        return NGX_DECLINED;
    }

    if (rc == NGX_AGAIN) {
        g->handler = ngx_http_scripting_gate_resume;
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
        return NGX_AGAIN;
    }

    rc = ngx_http_scripting_gate_reject(r, g);

    if (rc == NGX_DECLINED) {
        /* dry run */
        return NGX_DECLINED;
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static void
ngx_http_scripting_gate_resume(ngx_http_scripting_gate_t *g, ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = g->data;
    c = r->connection;

    if (rc == NGX_OK) {
        /*
         * the client is no longer watched by the gate: from here on, what a
         * client that goes away does is the proxy's business
         * (proxy_ignore_client_abort), as after limit_req's delay
         */
        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);

    } else {
        ngx_http_finalize_request(r, ngx_http_scripting_gate_reject(r, g));
    }

    ngx_http_run_posted_requests(c);
}


/*
 * Evaluates the keys and limits of the location's gates for a request, in
 * holds allocated from "pool" (the job's, for a job: the keys are copied
 * there); NGX_DECLINED: the request is not gated.
 */

ngx_int_t
ngx_http_scripting_gate_prepare(ngx_http_request_t *r,
    ngx_http_scripting_gate_t *g, ngx_pool_t *pool)
{
    ngx_int_t                            rc;
    ngx_uint_t                           i;
    ngx_http_scripting_gate_conf_t      *gc;
    ngx_http_scripting_gate_hold_t      *h;
    ngx_http_scripting_gate_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    if (glcf->gates == NULL || glcf->gates->nelts == 0) {
        return NGX_DECLINED;
    }

    if (glcf->gates->nelts == 1) {
        /* the common case costs no allocation */
        g->holds = &g->first;

    } else {
        g->holds = ngx_pcalloc(pool, glcf->gates->nelts
                                     * sizeof(ngx_http_scripting_gate_hold_t));
        if (g->holds == NULL) {
            return NGX_ERROR;
        }
    }

    g->nholds = 0;
    g->dry_run = glcf->dry_run;
    gc = glcf->gates->elts;

    for (i = 0; i < glcf->gates->nelts; i++) {
        h = &g->holds[g->nholds];

        rc = ngx_http_scripting_gate_prepare_hold(r, &gc[i], h, pool);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        h->gate = g;
        h->log = g->log;
        h->queue = glcf->dry_run ? 0 : gc[i].queue;

        g->nholds++;
    }

    if (g->nholds == 0) {
        return NGX_DECLINED;
    }

    g->shown = &g->holds[0];

    return NGX_OK;
}


/* one gate line: NGX_DECLINED for an empty key or an invalid limit */

static ngx_int_t
ngx_http_scripting_gate_prepare_hold(ngx_http_request_t *r,
    ngx_http_scripting_gate_conf_t *gc, ngx_http_scripting_gate_hold_t *h,
    ngx_pool_t *pool)
{
    u_char                               *p;
    ngx_int_t                             n;
    ngx_str_t                             key, limit;
    ngx_http_scripting_gate_zone_t       *zone;
    ngx_http_scripting_gate_log_value_t   lv, lv2;

    zone = gc->shm_zone->data;

    if (ngx_http_complex_value(r, &zone->key, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key.len == 0) {
        return NGX_DECLINED;
    }

    if (zone->digest) {
        if (ngx_http_scripting_gate_digest_key(pool, &key) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (key.len > NGX_HTTP_SCRIPTING_GATE_MAX_KEY) {
        if (ngx_http_scripting_gate_long_key(r, zone, &key) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (pool != r->pool) {
        p = ngx_pnalloc(pool, key.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, key.data, key.len);
        key.data = p;
    }

    if (gc->limit_cv) {
        if (ngx_http_complex_value(r, gc->limit_cv, &limit) != NGX_OK) {
            return NGX_ERROR;
        }

        n = ngx_atoi(limit.data, limit.len);

        if (n <= 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "scripting_gate: invalid limit \"%V\" for key "
                          "\"%V\", the request is not gated",
                          ngx_http_scripting_gate_log_value(&lv, limit.data,
                                                            limit.len),
                          ngx_http_scripting_gate_log_value(&lv2, key.data,
                                                            key.len));
            return NGX_DECLINED;
        }

        h->limit = n;

    } else {
        h->limit = gc->limit;
    }

    h->zone = zone;
    h->conf = gc;
    h->key = key;
    h->hash = (uint32_t) ngx_hash_key(key.data, key.len);

    return NGX_OK;
}


/*
 * A zone with "digest" keeps, shows and logs a key as the SHA-1 of its
 * value: for keys made of secrets, such as bearer tokens.
 */

static ngx_int_t
ngx_http_scripting_gate_digest_key(ngx_pool_t *pool, ngx_str_t *key)
{
    u_char      *p, digest[20];
    ngx_sha1_t   sha1;

    p = ngx_pnalloc(pool, 2 * sizeof(digest));
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_final(digest, &sha1);

    key->len = ngx_hex_dump(p, digest, sizeof(digest)) - p;
    key->data = p;

    return NGX_OK;
}


/*
 * A client that makes the key long must not get past the gate: such a key
 * is its head and a digest of the whole.
 */

static ngx_int_t
ngx_http_scripting_gate_long_key(ngx_http_request_t *r,
    ngx_http_scripting_gate_zone_t *zone, ngx_str_t *key)
{
    u_char                                digest[16], *p, *last;
    ngx_md5_t                             md5;
    ngx_http_scripting_gate_log_value_t   lv;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "scripting_gate: the value of the \"%V\" key is more "
                  "than %d bytes: \"%V...\", the request is gated by "
                  "its digest",
                  &zone->key.value, NGX_HTTP_SCRIPTING_GATE_MAX_KEY,
                  ngx_http_scripting_gate_log_value(&lv, key->data, 64));

    p = ngx_pnalloc(r->pool, NGX_HTTP_SCRIPTING_GATE_MAX_KEY);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, key->data, key->len);
    ngx_md5_final(digest, &md5);

    last = ngx_cpymem(p, key->data, NGX_HTTP_SCRIPTING_GATE_MAX_KEY
                                    - 2 * sizeof(digest) - 1);
    *last++ = '#';
    last = ngx_hex_dump(last, digest, sizeof(digest));

    key->data = p;
    key->len = last - p;

    return NGX_OK;
}


/*
 * The gates are passed in the order written; each one's slot is kept
 * while the next is waited for, as limit_conn and limit_req hold theirs.
 */

ngx_int_t
ngx_http_scripting_gate_acquire(ngx_http_scripting_gate_t *g)
{
    ngx_int_t                        rc;
    ngx_http_scripting_gate_hold_t  *h;

    while (g->next < g->nholds) {
        h = &g->holds[g->next];
        h->retry = g->retry;

        /* set before: a backend may stand between its queues and it */
        h->handler = ngx_http_scripting_gate_held;

        rc = h->zone->backend->acquire(h);

        if (rc == NGX_AGAIN) {
            g->status = ngx_max(g->status, h->status);
            return NGX_AGAIN;
        }

        rc = ngx_http_scripting_gate_passed(g, h, rc);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* a gate's answer, at once or after its queue: on to the next, or undone */

static ngx_int_t
ngx_http_scripting_gate_passed(ngx_http_scripting_gate_t *g,
    ngx_http_scripting_gate_hold_t *h, ngx_int_t rc)
{
    g->status = ngx_max(g->status, h->status);

    if (rc != NGX_OK) {
        g->shown = h;
        g->retry_after = h->retry_after;
        g->cooling = h->cooling;

        ngx_http_scripting_gate_release(g);

        return rc;
    }

    g->next++;

    return NGX_OK;
}


static void
ngx_http_scripting_gate_held(ngx_http_scripting_gate_hold_t *h, ngx_int_t rc)
{
    ngx_http_scripting_gate_t  *g;

    g = h->gate;

    rc = ngx_http_scripting_gate_passed(g, h, (rc == NGX_OK) ? NGX_OK
                                                             : NGX_DECLINED);

    if (rc == NGX_OK) {
        rc = ngx_http_scripting_gate_acquire(g);

        if (rc == NGX_AGAIN) {
            return;
        }
    }

    /* the handler runs the posted requests of a request it resumes */
    g->handler(g, (rc == NGX_OK) ? NGX_OK : NGX_DECLINED);
}


void
ngx_http_scripting_gate_release(ngx_http_scripting_gate_t *g)
{
    ngx_uint_t                       i;
    ngx_http_scripting_gate_hold_t  *h;

    for (i = 0; i < g->nholds; i++) {
        h = &g->holds[i];
        h->zone->backend->release(h);
    }

    g->next = 0;
    g->outcome = 0;
}


/* a Retry-After closes the keys of the gates that share it */

void
ngx_http_scripting_gate_cooldown(ngx_http_scripting_gate_t *g,
    ngx_msec_t delay)
{
    ngx_uint_t                       i;
    ngx_http_scripting_gate_hold_t  *h;

    for (i = 0; i < g->nholds; i++) {
        h = &g->holds[i];

        if (h->conf->cooldown) {
            h->zone->backend->cooldown(h, delay);
        }
    }
}


void
ngx_http_scripting_gate_answered(ngx_http_scripting_gate_t *g,
    ngx_uint_t status)
{
    ngx_uint_t  i;

    g->outcome = status;

    for (i = 0; i < g->nholds; i++) {
        g->holds[i].zone->backend->answered(&g->holds[i], status);
    }
}


void
ngx_http_scripting_gate_retried(ngx_http_scripting_gate_t *g)
{
    ngx_uint_t  i;

    for (i = 0; i < g->nholds; i++) {
        g->holds[i].zone->backend->retried(&g->holds[i]);
    }
}


/* whether one of the gates learns its key's limit from the upstream */

ngx_uint_t
ngx_http_scripting_gate_learns(ngx_http_scripting_gate_t *g)
{
    ngx_uint_t  i;

    for (i = 0; i < g->nholds; i++) {
        if (g->holds[i].conf->adaptive) {
            return 1;
        }
    }

    return 0;
}


/* the retry budget is kept in the zone of the first gate */

void
ngx_http_scripting_gate_budget_count(ngx_http_scripting_gate_t *g,
    ngx_int_t n)
{
    g->holds[0].zone->backend->budget_count(&g->holds[0], n);
}


ngx_uint_t
ngx_http_scripting_gate_budget_take(ngx_http_scripting_gate_t *g,
    ngx_uint_t percent, ngx_uint_t min)
{
    return g->holds[0].zone->backend->budget_take(&g->holds[0], percent,
                                                   min);
}


void
ngx_http_scripting_gate_budget_give(ngx_http_scripting_gate_t *g)
{
    g->holds[0].zone->backend->budget_give(&g->holds[0]);
}

/*
 * Answers a request the gate turned away, in the upstream's own error
 * shape, so that clients written for the upstream handle it unchanged.
 * In dry run, logs it and lets the request through without a slot.
 */

ngx_int_t
ngx_http_scripting_gate_reject(ngx_http_request_t *r,
    ngx_http_scripting_gate_t *g)
{
    u_char                               *p, msg[128];
    ngx_str_t                             body, id, ra, *reason, *key;
    ngx_uint_t                            secs;
    ngx_http_scripting_gate_loc_conf_t   *glcf;
    ngx_http_scripting_gate_log_value_t   lv;

    static ngx_str_t  queue_full = ngx_string("queue full");
    static ngx_str_t  queue_timeout = ngx_string("queue timeout");
    static ngx_str_t  cooling = ngx_string("key cooling down");
    static ngx_str_t  no_store = ngx_string("no-cache, no-store, "
                                            "must-revalidate");

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    key = ngx_http_scripting_gate_log_value(&lv, g->shown->key.data,
                                            g->shown->key.len);

    if (g->status == NGX_HTTP_SCRIPTING_GATE_NO_MEMORY) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "scripting_gate: zone \"%V\" is full, rejecting "
                      "key \"%V\"", &g->shown->zone->shm_zone->shm.name,
                      key);

    } else {
        reason = (g->status == NGX_HTTP_SCRIPTING_GATE_TIMEOUT)
                 ? &queue_timeout : g->cooling ? &cooling : &queue_full;

        ngx_log_error(glcf->log_level, r->connection->log, 0,
                      "%slimiting requests by scripting_gate, %V, key \"%V\""
                      " in zone \"%V\"",
                      glcf->dry_run ? "dry run, " : "", reason,
                      key, &g->shown->zone->shm_zone->shm.name);
    }

    if (glcf->dry_run) {
        g->status = NGX_HTTP_SCRIPTING_GATE_DRY_RUN;
        return NGX_DECLINED;
    }

    secs = (g->retry_after + 999) / 1000;
    if (secs == 0) {
        secs = 1;
    }

    if (ngx_http_scripting_gate_request_id(r, &id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_snprintf(msg, sizeof(msg) - 1,
                     "Rate limit exceeded the maximum. "
                     "Retry the request in [%ui] seconds", secs);
    *p = '\0';

    if (ngx_http_scripting_gate_json_error(r, glcf->status_code,
                          glcf->status_code == NGX_HTTP_SERVICE_UNAVAILABLE
                          ? "service.unavailable"
                          : "too.many.requests.retry.after",
                          (char *) msg, &id, &body)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ra.data = p;
    ra.len = ngx_sprintf(p, "%ui", secs) - p;

    if (ngx_http_scripting_gate_add_header(r, "Retry-After", &ra) != NGX_OK
        || ngx_http_scripting_gate_add_header(r, "Cache-Control", &no_store)
           != NGX_OK
        || ngx_http_scripting_gate_add_header(r, "ININ-Correlation-Id", &id)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_scripting_gate_send_json(r, glcf->status_code, &body);
}


static ngx_int_t
ngx_http_scripting_gate_header_filter(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_ctx_t  *ctx;

    /* the upstream's answer to the attempt; an error_page's is not */

    if (r == r->main && r->upstream) {
        ctx = ngx_http_scripting_gate_get_ctx(r, 0);

        if (ctx
            && ngx_http_scripting_gate_holding(&ctx->gate)
            && ctx->gate.outcome == 0)
        {
            ngx_http_scripting_gate_answered(&ctx->gate,
                                             r->headers_out.status);
        }
    }

    return ngx_http_next_header_filter(r);
}


/*
 * The request's context is kept in a pool cleanup (it survives internal
 * redirects, which zero r->ctx) and cached in r->ctx.
 */

ngx_http_scripting_gate_ctx_t *
ngx_http_scripting_gate_get_ctx(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_scripting_gate_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_scripting_gate_module);
    if (ctx) {
        return ctx;
    }

    /*
     * only an internal redirect zeroes r->ctx: otherwise, a context not
     * found there does not exist (the filters ask on every answer)
     */
    for (cln = r->internal ? r->pool->cleanup : NULL; cln; cln = cln->next) {
        if (cln->handler == ngx_http_scripting_gate_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_scripting_gate_module);
            return ctx;
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_scripting_gate_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_scripting_gate_ctx_t));
    ctx->request = r;
    ctx->gate.log = r->connection->log;
    ctx->gate.data = r;

    cln->handler = ngx_http_scripting_gate_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_scripting_gate_module);

    return ctx;
}


/* the request's gate, for the modules that gate its attempts themselves */

ngx_http_scripting_gate_t *
ngx_http_scripting_gate_get(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_http_scripting_gate_ctx_t  *ctx;

    ctx = ngx_http_scripting_gate_get_ctx(r, create);

    return ctx ? &ctx->gate : NULL;
}


static void
ngx_http_scripting_gate_cleanup(void *data)
{
    ngx_http_scripting_gate_ctx_t  *ctx = data;

    ngx_http_scripting_gate_release(&ctx->gate);
}


/* the figures of every zone, copied into the request's pool */

ngx_array_t *
ngx_http_scripting_gate_snapshot(ngx_http_request_t *r, ngx_uint_t max_keys)
{
    ngx_uint_t                             i;
    ngx_array_t                           *zones;
    ngx_shm_zone_t                       **shm_zone;
    ngx_http_scripting_gate_zone_t        *zone;
    ngx_http_scripting_gate_zone_stats_t  *z;
    ngx_http_scripting_gate_main_conf_t   *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_scripting_gate_module);

    zones = ngx_array_create(r->pool, gmcf->zones.nelts + 1,
                             sizeof(ngx_http_scripting_gate_zone_stats_t));
    if (zones == NULL) {
        return NULL;
    }

    shm_zone = gmcf->zones.elts;

    for (i = 0; i < gmcf->zones.nelts; i++) {
        zone = shm_zone[i]->data;

        z = ngx_array_push(zones);
        if (z == NULL) {
            return NULL;
        }

        ngx_memzero(z, sizeof(ngx_http_scripting_gate_zone_stats_t));
        z->name = shm_zone[i]->shm.name;

        if (zone->backend->snapshot(zone, r->pool, max_keys, z) != NGX_OK) {
            return NULL;
        }
    }

    return zones;
}


/*
 * Counters and histograms only: limit, active, queued, the cool-downs and
 * the retry budget's requests under way are live state the gate works with.
 */

void
ngx_http_scripting_gate_reset(ngx_http_request_t *r)
{
    ngx_uint_t                            i;
    ngx_shm_zone_t                      **shm_zone;
    ngx_http_scripting_gate_zone_t       *zone;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_scripting_gate_module);
    shm_zone = gmcf->zones.elts;

    for (i = 0; i < gmcf->zones.nelts; i++) {
        zone = shm_zone[i]->data;
        zone->backend->reset(zone);
    }
}


static ngx_int_t
ngx_http_scripting_gate_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_scripting_gate_ctx_t  *ctx;

    ctx = ngx_http_scripting_gate_get_ctx(r, 0);

    if (ctx == NULL || ctx->gate.status == NGX_HTTP_SCRIPTING_GATE_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = ngx_http_scripting_gate_status_names[ctx->gate.status].len;
    v->data = ngx_http_scripting_gate_status_names[ctx->gate.status].data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_scripting_gate_ctx_t  *ctx;

    ctx = ngx_http_scripting_gate_get_ctx(r, 0);

    if (ctx == NULL || ctx->gate.shown == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = ctx->gate.shown->key.len;
    v->data = ctx->gate.shown->key.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_number_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                         *p;
    ngx_uint_t                      i, n;
    ngx_http_scripting_gate_ctx_t  *ctx;

    ctx = ngx_http_scripting_gate_get_ctx(r, 0);
    n = 0;

    if (ctx && ctx->gate.shown) {
        if (data == NGX_HTTP_SCRIPTING_GATE_VAR_LIMIT) {
            n = ctx->gate.shown->effective;

        } else {
            /* the wait: in all queues */
            for (i = 0; i < ctx->gate.nholds; i++) {
                n += ctx->gate.holds[i].wait;
            }
        }

    } else if (data == NGX_HTTP_SCRIPTING_GATE_VAR_LIMIT) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", n) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static void *
ngx_http_scripting_gate_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    gmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_main_conf_t));
    if (gmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&gmcf->zones, cf->pool, 2, sizeof(ngx_shm_zone_t *))
        != NGX_OK
        || ngx_array_init(&gmcf->redis, cf->pool, 1, sizeof(void *))
           != NGX_OK
        || ngx_array_init(&gmcf->json_vars, cf->pool, 2, sizeof(void *))
           != NGX_OK)
    {
        return NULL;
    }

    return gmcf;
}


static void *
ngx_http_scripting_gate_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->gates = NULL;
     */

    conf->status_code = NGX_CONF_UNSET_UINT;
    conf->dry_run = NGX_CONF_UNSET;
    conf->log_level = NGX_CONF_UNSET_UINT;
    conf->json_max_size = NGX_CONF_UNSET_SIZE;
    conf->json_max_memory = NGX_CONF_UNSET_SIZE;

    return conf;
}


static char *
ngx_http_scripting_gate_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_scripting_gate_loc_conf_t *prev = parent;
    ngx_http_scripting_gate_loc_conf_t *conf = child;

    /* the gates are inherited together, as limit_conn's are */
    if (conf->gates == NULL) {
        conf->gates = prev->gates;
    }

    ngx_conf_merge_uint_value(conf->status_code, prev->status_code,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_ERR);
    ngx_conf_merge_size_value(conf->json_max_size, prev->json_max_size,
                              64 * 1024);
    ngx_conf_merge_size_value(conf->json_max_memory, prev->json_max_memory,
                              1024 * 1024);

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                               size;
    ngx_str_t                            *value, name;
    ngx_uint_t                            i;
    ngx_shm_zone_t                       *shm_zone, **zp;
    ngx_http_scripting_gate_zone_t       *zone;
    ngx_http_compile_complex_value_t      ccv;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    value = cf->args->elts;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = &zone->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    size = 0;
    name.len = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            if (ngx_http_scripting_gate_conf_zone(cf, &value[i], &name, &size)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "digest") == 0) {
            zone->digest = 1;
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

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_scripting_gate_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        zone = shm_zone->data;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V \"%V\" is already bound to key \"%V\"",
                           &cmd->name, &name, &zone->key.value);
        return NGX_CONF_ERROR;
    }

    zone->backend = &ngx_http_scripting_gate_shm_backend;
    zone->shm_zone = shm_zone;
    shm_zone->init = ngx_http_scripting_gate_init_zone;
    shm_zone->data = zone;

    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_scripting_gate_module);

    zp = ngx_array_push(&gmcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = shm_zone;

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_scripting_gate_loc_conf_t *glcf = conf;

    char                            *rv;
    ngx_str_t                       *value;
    ngx_uint_t                       i;
    ngx_http_scripting_gate_conf_t  *gc, *prev;

    value = cf->args->elts;

    if (glcf->gates == NULL) {
        glcf->gates = ngx_array_create(cf->pool, 1,
                                       sizeof(ngx_http_scripting_gate_conf_t));
        if (glcf->gates == NULL) {
            return NGX_CONF_ERROR;
        }

        if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
            return NGX_CONF_OK;
        }

    } else if (glcf->gates->nelts == 0) {
        return "is duplicate";
    }

    gc = ngx_array_push(glcf->gates);
    if (gc == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(gc, sizeof(ngx_http_scripting_gate_conf_t));

    gc->min = 1;
    gc->queue = 100;
    gc->queue_timeout = 10000;
    gc->cooldown = 1;

    for (i = 1; i < cf->args->nelts; i++) {
        rv = ngx_http_scripting_gate_parse(cf, gc, &value[i]);

        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (gc->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (gc->limit == 0 && gc->limit_cv == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"limit\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (gc->adaptive && gc->limit_cv) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"adaptive\" needs a \"limit\" that is a number");
        return NGX_CONF_ERROR;
    }

    if (gc->limit && gc->min > gc->limit) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"min\" must not be above \"limit\"");
        return NGX_CONF_ERROR;
    }

    prev = glcf->gates->elts;

    for (i = 0; i + 1 < glcf->gates->nelts; i++) {
        if (prev[i].shm_zone == gc->shm_zone) {
            return "is duplicate";
        }
    }

    if (gc->adaptive || gc->interval) {
        /* a node's own gate, where Redis learns and paces for the cluster */
        gc->local = ngx_palloc(cf->pool,
                               sizeof(ngx_http_scripting_gate_conf_t));
        if (gc->local == NULL) {
            return NGX_CONF_ERROR;
        }

        *gc->local = *gc;
        gc->local->adaptive = 0;
        gc->local->rate = 0;
        gc->local->interval = 0;
    }

    return NGX_CONF_OK;
}


/* one name=value parameter of scripting_gate */

static char *
ngx_http_scripting_gate_parse(ngx_conf_t *cf,
    ngx_http_scripting_gate_conf_t *gc, ngx_str_t *value)
{
    ngx_int_t  n;
    ngx_str_t  s;

    if (ngx_strncmp(value->data, "zone=", 5) == 0) {

        s.len = value->len - 5;
        s.data = value->data + 5;

        gc->shm_zone = ngx_shared_memory_add(cf, &s, 0,
                                             &ngx_http_scripting_gate_module);
        if (gc->shm_zone == NULL) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "limit=", 6) == 0) {
        return ngx_http_scripting_gate_parse_limit(cf, gc, value);
    }

    if (ngx_strncmp(value->data, "rate=", 5) == 0) {
        return ngx_http_scripting_gate_parse_rate(cf, gc, value);
    }

    if (ngx_strcmp(value->data, "adaptive") == 0) {
        gc->adaptive = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "min=", 4) == 0) {

        n = ngx_atoi(value->data + 4, value->len - 4);

        if (n <= 0 || n > 65535) {
            goto invalid;
        }

        gc->min = n;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value->data, "cooldown=on") == 0) {
        gc->cooldown = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value->data, "cooldown=off") == 0) {
        gc->cooldown = 0;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "queue=", 6) == 0) {

        n = ngx_atoi(value->data + 6, value->len - 6);

        if (n == NGX_ERROR) {
            goto invalid;
        }

        gc->queue = n;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "queue_timeout=", 14) == 0) {

        s.len = value->len - 14;
        s.data = value->data + 14;

        gc->queue_timeout = ngx_parse_time(&s, 0);

        if (gc->queue_timeout == (ngx_msec_t) NGX_ERROR
            || gc->queue_timeout == 0)
        {
            goto invalid;
        }

        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", value);
    return NGX_CONF_ERROR;

invalid:

    s.data = value->data;
    s.len = ngx_strlchr(value->data, value->data + value->len, '=')
            - value->data;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid %V \"%V\"", &s, value);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_scripting_gate_parse_limit(ngx_conf_t *cf,
    ngx_http_scripting_gate_conf_t *gc, ngx_str_t *value)
{
    ngx_int_t                          n;
    ngx_str_t                          s;
    ngx_http_compile_complex_value_t   ccv;

    s.len = value->len - 6;
    s.data = value->data + 6;

    if (ngx_http_script_variables_count(&s)) {
        gc->limit_cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (gc->limit_cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = gc->limit_cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    n = ngx_atoi(s.data, s.len);

    if (n <= 0 || n > 65535) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid limit \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    gc->limit = n;

    return NGX_CONF_OK;
}


/* "rate=N r/s" or "rate=N r/m", as limit_req_zone writes it */

static char *
ngx_http_scripting_gate_parse_rate(ngx_conf_t *cf,
    ngx_http_scripting_gate_conf_t *gc, ngx_str_t *value)
{
    u_char     *p;
    size_t      len;
    ngx_int_t   n, period;

    p = value->data + 5;
    len = value->len - 5;
    period = 1;

    if (len > 3 && ngx_strncmp(p + len - 3, "r/s", 3) == 0) {
        len -= 3;

    } else if (len > 3 && ngx_strncmp(p + len - 3, "r/m", 3) == 0) {
        len -= 3;
        period = 60;
    }

    n = (len == value->len - 8) ? ngx_atoi(p, len) : NGX_ERROR;

    if (n <= 0 || n > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    gc->rate = n * 1000 / period;

    /* rounded up: the starts are never closer than the rate allows */
    gc->interval = (period * 1000 + n - 1) / n;

    return NGX_CONF_OK;
}

static ngx_int_t
ngx_http_scripting_gate_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    /*
     * the defer hooks are chained anew by each configuration's modules, as
     * nginx's filters are; a reload keeps this variable of the loaded .so
     */
    ngx_http_scripting_gate_defer = NULL;

    for (v = ngx_http_scripting_gate_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt                  *h;
    ngx_http_core_main_conf_t            *cmcf;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_scripting_gate_module);

    if (ngx_http_scripting_gate_redis_init(cf, &gmcf->redis) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_scripting_gate_json_vars(cf)) {
        h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = ngx_http_scripting_gate_rewrite_handler;
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_scripting_gate_preaccess_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_scripting_gate_header_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_init_process(ngx_cycle_t *cycle)
{
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_scripting_gate_module);

    if (gmcf == NULL || gmcf->zones.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_http_scripting_gate_queue_init_process(cycle, &gmcf->zones)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* after the queue's: the members at Redis carry the worker's nonce */
    return ngx_http_scripting_gate_redis_init_process(cycle, &gmcf->redis);
}


static void
ngx_http_scripting_gate_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    gmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_scripting_gate_module);

    if (gmcf) {
        ngx_http_scripting_gate_redis_exit_process(&gmcf->redis);
    }

    ngx_http_scripting_gate_queue_exit_process(cycle);
}
