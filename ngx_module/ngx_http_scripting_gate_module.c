
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * The module: directives, the request path of the gate (rewrite phase for
 * bodies that keys are read from, preaccess phase for the gate itself),
 * local rejections, and the variables.
 */


#include "ngx_http_scripting_gate_module.h"
#include "ngx_http_scripting_gate_async.h"
#include <ngx_md5.h>


static ngx_int_t ngx_http_scripting_gate_rewrite_handler(
    ngx_http_request_t *r);
static void ngx_http_scripting_gate_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_preaccess_handler(
    ngx_http_request_t *r);
static void ngx_http_scripting_gate_resume(ngx_http_scripting_gate_req_t *gr,
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
static char *ngx_http_scripting_gate_retry_after(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
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
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_scripting_gate_zone,
      0,
      0,
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

    { ngx_string("scripting_retry"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_scripting_gate_retry,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("scripting_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_scripting_gate_retry_after,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("scripting_gate_stats"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_scripting_gate_stats,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("scripting_async_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_scripting_gate_async_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("scripting_async"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_scripting_gate_async,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("scripting_async_jobs"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_scripting_gate_async_jobs,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
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
      offsetof(ngx_http_scripting_gate_req_t, wait),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("scripting_retry_count"), NULL,
      ngx_http_scripting_gate_number_variable,
      offsetof(ngx_http_scripting_gate_req_t, retries),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/*
 * Rewrite phase: a key may be built with "set" from scripting_json_var
 * variables, so a gated location reads the body before "set" runs (the
 * handlers of a phase run in reverse order of registration, and this one
 * is registered after the rewrite module's).
 */

static ngx_int_t
ngx_http_scripting_gate_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_req_t        *gr;
    ngx_http_scripting_gate_loc_conf_t   *glcf;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    if (r != r->main || r->request_body) {
        return NGX_DECLINED;
    }

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_scripting_gate_module);
    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    if (gmcf->json_vars.nelts == 0
        || (glcf->shm_zone == NULL && glcf->retry == NULL
            && glcf->async == NULL))
    {
        return NGX_DECLINED;
    }

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        return NGX_DECLINED;
    }

    gr = ngx_http_scripting_gate_get_req(r, 1);
    if (gr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_scripting_gate_read_body(r, gr);
}


/*
 * Reads the whole request body once, for the key and for every attempt;
 * NGX_DECLINED when it is there, NGX_DONE when the phases resume later.
 */

ngx_int_t
ngx_http_scripting_gate_read_body(ngx_http_request_t *r,
    ngx_http_scripting_gate_req_t *gr)
{
    ngx_int_t  rc;

    if (gr->body_ready) {
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

    if (gr->body_ready) {
        return NGX_DECLINED;
    }

    gr->body_waiting = 1;

    return NGX_DONE;
}


static void
ngx_http_scripting_gate_body_handler(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_req_t  *gr;

    gr = ngx_http_scripting_gate_get_req(r, 0);
    if (gr == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    gr->body_ready = 1;

    if (gr->body_waiting) {
        gr->body_waiting = 0;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
    }
}


static ngx_int_t
ngx_http_scripting_gate_preaccess_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_http_scripting_gate_req_t       *gr;
    ngx_http_scripting_gate_loc_conf_t  *glcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    /* an async submission is answered at once, its job gated when it runs */
    if (glcf->shm_zone == NULL || ngx_http_scripting_gate_async_wanted(r)) {
        return NGX_DECLINED;
    }

    gr = ngx_http_scripting_gate_get_req(r, 1);
    if (gr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (glcf->retry) {
        /* each attempt is gated by the retry handler, unless none can be */
        if (!ngx_http_scripting_gate_retry_streamed(r)) {
            return NGX_DECLINED;
        }

        gr->streamed = 1;
    }

    if (gr->status != NGX_HTTP_SCRIPTING_GATE_NONE) {
        /* resumed after the queue, or after an internal redirect */
        return NGX_DECLINED;
    }

    rc = ngx_http_scripting_gate_prepare(r, gr);

    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? NGX_DECLINED
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_scripting_gate_acquire(gr);

    if (rc == NGX_OK) {
        return NGX_DECLINED;
    }

    if (rc == NGX_AGAIN) {
        gr->handler = ngx_http_scripting_gate_resume;
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
        return NGX_AGAIN;
    }

    rc = ngx_http_scripting_gate_reject(r, gr);

    if (rc == NGX_DECLINED) {
        /* dry run */
        return NGX_DECLINED;
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static void
ngx_http_scripting_gate_resume(ngx_http_scripting_gate_req_t *gr,
    ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = gr->request;
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
        ngx_http_finalize_request(r, ngx_http_scripting_gate_reject(r, gr));
    }

    ngx_http_run_posted_requests(c);
}


/*
 * Evaluates the key and the limit of the location for this request;
 * NGX_DECLINED: the request is not gated.
 */

ngx_int_t
ngx_http_scripting_gate_prepare(ngx_http_request_t *r,
    ngx_http_scripting_gate_req_t *gr)
{
    u_char                               digest[16], *p, *last;
    ngx_int_t                            n;
    ngx_str_t                            key, limit;
    ngx_md5_t                            md5;
    ngx_http_scripting_gate_zone_t      *zone;
    ngx_http_scripting_gate_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);
    zone = glcf->shm_zone->data;

    if (ngx_http_complex_value(r, &zone->key, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key.len == 0) {
        return NGX_DECLINED;
    }

    if (key.len > NGX_HTTP_SCRIPTING_GATE_MAX_KEY) {
        /*
         * a client that makes the key long must not get past the gate:
         * such a key is its head and a digest of the whole
         */

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "the value of the \"%V\" key is more than %d bytes: "
                      "\"%*s...\", the request is gated by its digest",
                      &zone->key.value, NGX_HTTP_SCRIPTING_GATE_MAX_KEY,
                      (size_t) 64, key.data);

        p = ngx_pnalloc(r->pool, NGX_HTTP_SCRIPTING_GATE_MAX_KEY);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_md5_init(&md5);
        ngx_md5_update(&md5, key.data, key.len);
        ngx_md5_final(digest, &md5);

        last = ngx_cpymem(p, key.data, NGX_HTTP_SCRIPTING_GATE_MAX_KEY
                                       - 2 * sizeof(digest) - 1);
        *last++ = '#';
        last = ngx_hex_dump(last, digest, sizeof(digest));

        key.data = p;
        key.len = last - p;
    }

    if (glcf->limit_cv) {
        if (ngx_http_complex_value(r, glcf->limit_cv, &limit) != NGX_OK) {
            return NGX_ERROR;
        }

        n = ngx_atoi(limit.data, limit.len);

        if (n <= 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "scripting_gate: invalid limit \"%V\" for key "
                          "\"%V\", the request is not gated", &limit, &key);
            return NGX_DECLINED;
        }

        gr->limit = n;

    } else {
        gr->limit = glcf->limit;
    }

    gr->zone = zone;
    gr->key = key;
    gr->hash = (uint32_t) ngx_hash_key(key.data, key.len);
    gr->queue = glcf->queue;
    gr->queue_timeout = glcf->queue_timeout;

    if (glcf->dry_run) {
        gr->queue = 0;
    }

    return NGX_OK;
}


/*
 * Answers a request the gate turned away, in the upstream's own error
 * shape, so that clients written for the upstream handle it unchanged.
 * In dry run, logs it and lets the request through without a slot.
 */

ngx_int_t
ngx_http_scripting_gate_reject(ngx_http_request_t *r,
    ngx_http_scripting_gate_req_t *gr)
{
    u_char                               *p, msg[128];
    ngx_str_t                             body, id, ra, *reason;
    ngx_uint_t                            secs;
    ngx_http_scripting_gate_loc_conf_t   *glcf;

    static ngx_str_t  queue_full = ngx_string("queue full");
    static ngx_str_t  queue_timeout = ngx_string("queue timeout");
    static ngx_str_t  cooling = ngx_string("key cooling down");
    static ngx_str_t  no_store = ngx_string("no-cache, no-store, "
                                            "must-revalidate");

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    if (gr->status == NGX_HTTP_SCRIPTING_GATE_NO_MEMORY) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "scripting_gate: zone \"%V\" is full, rejecting "
                      "key \"%V\"", &gr->zone->shm_zone->shm.name, &gr->key);

    } else {
        reason = (gr->status == NGX_HTTP_SCRIPTING_GATE_TIMEOUT)
                 ? &queue_timeout : gr->cooling ? &cooling : &queue_full;

        ngx_log_error(glcf->log_level, r->connection->log, 0,
                      "%slimiting requests by scripting_gate, %V, key \"%V\""
                      " in zone \"%V\"",
                      glcf->dry_run ? "dry run, " : "", reason,
                      &gr->key, &gr->zone->shm_zone->shm.name);
    }

    if (glcf->dry_run) {
        gr->status = NGX_HTTP_SCRIPTING_GATE_DRY_RUN;
        return NGX_DECLINED;
    }

    secs = (gr->retry_after + 999) / 1000;
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


/*
 * The contextId and ININ-Correlation-Id of the errors a request gets: its
 * $request_id in the shape of Genesys' correlation ids, a UUID (8-4-4-4-12
 * hex digits), so that the access log's $request_id is the same id without
 * its dashes.
 */

ngx_int_t
ngx_http_scripting_gate_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char                               *p;
    ngx_http_variable_value_t            *vv;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_scripting_gate_module);

    vv = ngx_http_get_indexed_variable(r, gmcf->request_id_index);
    if (vv == NULL || vv->not_found) {
        return NGX_ERROR;
    }

    if (vv->len != 32) {
        id->len = vv->len;
        id->data = vv->data;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 36);
    if (p == NULL) {
        return NGX_ERROR;
    }

    id->data = p;

    p = ngx_cpymem(p, vv->data, 8);
    *p++ = '-';
    p = ngx_cpymem(p, vv->data + 8, 4);
    *p++ = '-';
    p = ngx_cpymem(p, vv->data + 12, 4);
    *p++ = '-';
    p = ngx_cpymem(p, vv->data + 16, 4);
    *p++ = '-';
    p = ngx_cpymem(p, vv->data + 20, 12);

    id->len = p - id->data;

    return NGX_OK;
}


/* an answer held whole in memory, JSON unless the caller set a type */

ngx_int_t
ngx_http_scripting_gate_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;

    if (r->headers_out.content_type.len == 0) {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    if (body->len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_scripting_gate_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.len = ngx_strlen(name);
    h->key.data = (u_char *) name;
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/*
 * The first request header of that name; nginx keeps some (Accept) in
 * headers_in only when built with certain modules, so the list is read.
 */

ngx_table_elt_t *
ngx_http_scripting_gate_header_in(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * The upstream's answer to a gated request: counts it, and turns its
 * Retry-After into a cool-down of the key.
 */

void
ngx_http_scripting_gate_upstream_status(ngx_http_request_t *r,
    ngx_http_scripting_gate_req_t *gr, ngx_uint_t status)
{
    ngx_int_t                            rc;
    ngx_msec_t                           ra;
    ngx_http_scripting_gate_loc_conf_t  *glcf;

    if (gr->ticket == NULL) {
        return;
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    rc = NGX_DECLINED;
    ra = 0;

    if (glcf->retry_after
        && (status == NGX_HTTP_TOO_MANY_REQUESTS
            || status == NGX_HTTP_SERVICE_UNAVAILABLE))
    {
        rc = ngx_http_scripting_gate_parse_retry_after(r, &ra);
    }

    ngx_http_scripting_gate_upstream_answer(gr, glcf, status, rc, ra);
}


/*
 * An upstream answer of a request or a job that holds a slot: counts a 429,
 * and turns a Retry-After (rc NGX_OK, ra ms) into a cool-down of the key.
 */

void
ngx_http_scripting_gate_upstream_answer(ngx_http_scripting_gate_req_t *gr,
    ngx_http_scripting_gate_loc_conf_t *glcf, ngx_uint_t status,
    ngx_int_t rc, ngx_msec_t ra)
{
    ngx_http_scripting_gate_node_t  *node;

    if (gr->ticket == NULL) {
        return;
    }

    node = gr->ticket->node;

    if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        (void) ngx_atomic_fetch_add(&node->counters.upstream_429, 1);
        (void) ngx_atomic_fetch_add(&gr->zone->sh->counters.upstream_429, 1);

    } else if (status != NGX_HTTP_SERVICE_UNAVAILABLE) {
        return;
    }

    if (!glcf->retry_after || rc != NGX_OK) {
        return;
    }

    ngx_http_scripting_gate_cooldown(gr, ngx_min(ra, glcf->retry_after_max));
}


/*
 * Retry-After of the response in r->headers_out, as delay-seconds or an
 * HTTP-date; NGX_DECLINED when absent, NGX_ERROR (logged) when malformed.
 */

ngx_int_t
ngx_http_scripting_gate_parse_retry_after(ngx_http_request_t *r,
    ngx_msec_t *ms)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0
            || h[i].key.len != sizeof("Retry-After") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Retry-After",
                               sizeof("Retry-After") - 1)
               != 0)
        {
            continue;
        }

        break;
    }

    if (ngx_http_scripting_gate_retry_after_value(&h[i].value, ms) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "scripting_gate: ignoring malformed Retry-After "
                      "\"%*s\"", ngx_min(h[i].value.len, 64),
                      h[i].value.data);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a Retry-After value: delay-seconds or an HTTP-date, in ms from now */

ngx_int_t
ngx_http_scripting_gate_retry_after_value(ngx_str_t *value, ngx_msec_t *ms)
{
    time_t     t, now;
    ngx_int_t  n;

    /* 10 digits: more than a century, and no overflow of time_t */

    if (value->len <= 10) {
        n = ngx_atoi(value->data, value->len);

        if (n != NGX_ERROR) {
            *ms = (ngx_msec_t) ngx_min(n, NGX_MAX_INT32_VALUE / 1000) * 1000;
            return NGX_OK;
        }
    }

    t = ngx_parse_http_time(value->data, value->len);

    if (t == NGX_ERROR) {
        return NGX_ERROR;
    }

    now = ngx_time();

    if (t <= now) {
        *ms = 0;
        return NGX_OK;
    }

    *ms = (ngx_msec_t) ngx_min(t - now, NGX_MAX_INT32_VALUE / 1000) * 1000;

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_header_filter(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_req_t  *gr;

    if (r == r->main && r->upstream) {
        gr = ngx_http_scripting_gate_get_req(r, 0);

        if (gr && gr->ticket && !gr->accounted) {
            gr->accounted = 1;
            ngx_http_scripting_gate_upstream_status(r, gr,
                                                    r->headers_out.status);
        }
    }

    return ngx_http_next_header_filter(r);
}


/*
 * The request's gate state is kept in a pool cleanup (it survives internal
 * redirects, which zero r->ctx) and cached in r->ctx.
 */

ngx_http_scripting_gate_req_t *
ngx_http_scripting_gate_get_req(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_scripting_gate_req_t  *gr;

    r = r->main;

    gr = ngx_http_get_module_ctx(r, ngx_http_scripting_gate_module);
    if (gr) {
        return gr;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_scripting_gate_cleanup) {
            gr = cln->data;
            ngx_http_set_ctx(r, gr, ngx_http_scripting_gate_module);
            return gr;
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_scripting_gate_req_t));
    if (cln == NULL) {
        return NULL;
    }

    gr = cln->data;
    ngx_memzero(gr, sizeof(ngx_http_scripting_gate_req_t));
    gr->request = r;
    gr->log = r->connection->log;

    cln->handler = ngx_http_scripting_gate_cleanup;

    ngx_http_set_ctx(r, gr, ngx_http_scripting_gate_module);

    return gr;
}


static void
ngx_http_scripting_gate_cleanup(void *data)
{
    ngx_http_scripting_gate_req_t  *gr = data;

    if (gr->retry_event.timer_set) {
        ngx_del_timer(&gr->retry_event);
    }

    if (gr->retry_event.posted) {
        ngx_delete_posted_event(&gr->retry_event);
    }

    ngx_http_scripting_gate_release(gr);
    ngx_http_scripting_gate_retry_done(gr);
}


static ngx_int_t
ngx_http_scripting_gate_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_scripting_gate_req_t  *gr;

    gr = ngx_http_scripting_gate_get_req(r, 0);

    if (gr == NULL || gr->status == NGX_HTTP_SCRIPTING_GATE_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = ngx_http_scripting_gate_status_names[gr->status].len;
    v->data = ngx_http_scripting_gate_status_names[gr->status].data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_scripting_gate_req_t  *gr;

    gr = ngx_http_scripting_gate_get_req(r, 0);

    if (gr == NULL || gr->key.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = gr->key.len;
    v->data = gr->key.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_number_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                         *p;
    ngx_uint_t                      n;
    ngx_http_scripting_gate_req_t  *gr;

    gr = ngx_http_scripting_gate_get_req(r, 0);

    n = gr ? *(ngx_uint_t *) ((char *) gr + data) : 0;

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
        || ngx_array_init(&gmcf->json_vars, cf->pool, 2, sizeof(void *))
           != NGX_OK
        || ngx_array_init(&gmcf->jobs_zones, cf->pool, 1, sizeof(void *))
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
     *     conf->shm_zone = NULL;
     *     conf->limit_cv = NULL;
     *     conf->stats_max_keys = 0;
     *     conf->stats_reset = 0;
     *     conf->jobs = NULL;
     */

    conf->limit = NGX_CONF_UNSET_UINT;
    conf->queue = NGX_CONF_UNSET_UINT;
    conf->queue_timeout = NGX_CONF_UNSET_MSEC;
    conf->status_code = NGX_CONF_UNSET_UINT;
    conf->dry_run = NGX_CONF_UNSET;
    conf->log_level = NGX_CONF_UNSET_UINT;
    conf->retry = NGX_CONF_UNSET_PTR;
    conf->retry_after = NGX_CONF_UNSET;
    conf->retry_after_max = NGX_CONF_UNSET_MSEC;
    conf->async = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_scripting_gate_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_scripting_gate_loc_conf_t *prev = parent;
    ngx_http_scripting_gate_loc_conf_t *conf = child;

    if (conf->limit == NGX_CONF_UNSET_UINT) {
        conf->shm_zone = prev->shm_zone;
        conf->limit_cv = prev->limit_cv;
        conf->limit = prev->limit;
        conf->queue = prev->queue;
        conf->queue_timeout = prev->queue_timeout;
    }

    ngx_conf_merge_uint_value(conf->limit, prev->limit, 0);
    ngx_conf_merge_uint_value(conf->queue, prev->queue, 100);
    ngx_conf_merge_msec_value(conf->queue_timeout, prev->queue_timeout,
                              10000);
    ngx_conf_merge_uint_value(conf->status_code, prev->status_code,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_ERR);
    ngx_conf_merge_ptr_value(conf->retry, prev->retry, NULL);
    ngx_conf_merge_value(conf->retry_after, prev->retry_after, 1);
    ngx_conf_merge_msec_value(conf->retry_after_max, prev->retry_after_max,
                              180000);
    ngx_conf_merge_ptr_value(conf->async, prev->async, NULL);

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


/* "zone=NAME:SIZE" of scripting_gate_zone and scripting_async_zone */

char *
ngx_http_scripting_gate_conf_zone(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    name->data = value->data + 5;

    p = (u_char *) ngx_strlchr(name->data, value->data + value->len, ':');

    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    name->len = p - name->data;

    s.data = p + 1;
    s.len = value->data + value->len - s.data;

    *size = ngx_parse_size(&s);

    if (*size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    if (*size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", value);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_scripting_gate_loc_conf_t *glcf = conf;

    ngx_int_t                          n;
    ngx_str_t                         *value, s;
    ngx_uint_t                         i;
    ngx_http_compile_complex_value_t   ccv;

    if (glcf->limit != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        glcf->limit = 0;
        glcf->shm_zone = NULL;
        return NGX_CONF_OK;
    }

    glcf->limit = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            s.len = value[i].len - 5;
            s.data = value[i].data + 5;

            glcf->shm_zone = ngx_shared_memory_add(cf, &s, 0,
                                              &ngx_http_scripting_gate_module);
            if (glcf->shm_zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "limit=", 6) == 0) {

            s.len = value[i].len - 6;
            s.data = value[i].data + 6;

            if (ngx_http_script_variables_count(&s)) {
                glcf->limit_cv = ngx_palloc(cf->pool,
                                            sizeof(ngx_http_complex_value_t));
                if (glcf->limit_cv == NULL) {
                    return NGX_CONF_ERROR;
                }

                ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

                ccv.cf = cf;
                ccv.value = &s;
                ccv.complex_value = glcf->limit_cv;

                if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                    return NGX_CONF_ERROR;
                }

                continue;
            }

            n = ngx_atoi(s.data, s.len);

            if (n <= 0 || n > 65535) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid limit \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            glcf->limit = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue=", 6) == 0) {

            n = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid queue \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            glcf->queue = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue_timeout=", 14) == 0) {

            s.len = value[i].len - 14;
            s.data = value[i].data + 14;

            glcf->queue_timeout = ngx_parse_time(&s, 0);

            if (glcf->queue_timeout == (ngx_msec_t) NGX_ERROR
                || glcf->queue_timeout == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid queue_timeout \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (glcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (glcf->limit == 0 && glcf->limit_cv == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"limit\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate_retry_after(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_scripting_gate_loc_conf_t *glcf = conf;

    ngx_str_t  *value, s;

    if (glcf->retry_after != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        glcf->retry_after = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        glcf->retry_after = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"on\" or \"off\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "max=", 4) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        s.len = value[2].len - 4;
        s.data = value[2].data + 4;

        glcf->retry_after_max = ngx_parse_time(&s, 0);

        if (glcf->retry_after_max == (ngx_msec_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid max \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_scripting_gate_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

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
    ngx_str_t                             name = ngx_string("request_id");
    ngx_http_handler_pt                  *h;
    ngx_http_core_main_conf_t            *cmcf;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_scripting_gate_module);

    gmcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (gmcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_scripting_gate_rewrite_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_scripting_gate_preaccess_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_scripting_gate_retry_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_scripting_gate_header_filter;

    if (ngx_http_scripting_gate_retry_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* registered last: an async submission is taken before a retry */
    return ngx_http_scripting_gate_async_init(cf);
}


static ngx_int_t
ngx_http_scripting_gate_init_process(ngx_cycle_t *cycle)
{
    if (ngx_http_scripting_gate_queue_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_scripting_gate_jobs_init_process(cycle);
}


static void
ngx_http_scripting_gate_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_scripting_gate_async_exit_process(cycle);
    ngx_http_scripting_gate_queue_exit_process(cycle);
}
