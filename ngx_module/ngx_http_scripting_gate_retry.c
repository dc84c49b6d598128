
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Retry: an upstream 429 (or another listed status) is answered again,
 * inside the client's request, after a backoff or the upstream's
 * Retry-After, within a deadline and a retry budget.
 *
 * Design.  Every attempt is the client's own request going through the
 * location's own content handler (proxy_pass, fastcgi_pass, grpc_pass...),
 * as without the module, so that caching, X-Accel-Redirect, ranges, body
 * filters, variables, mirror and upgrades apply to the answer natively.
 * The body is read once, before the first attempt; each attempt's upstream
 * sends it again from r->request_body, from memory or its temporary file.
 *
 * The header filter decides when the attempt's answer comes.  A final
 * answer goes on down the filter chain untouched.  An answer to retry is
 * swallowed: its header is not passed on, r->header_only makes the
 * upstream end the attempt at once (nothing of it is stored in a cache or
 * read further), and the request keeps one reference more (r->main->count),
 * so that the attempt's finalization leaves it alive.  A posted event then
 * watches the client (ngx_http_test_reading) and sets the backoff timer.
 * When it fires, the request is given fresh output headers, takes a gate
 * slot again (ahead of newcomers), and runs its content phase once more;
 * that reference becomes the attempt's.  Access checks and the phases
 * before the content phase run once per client request.  During a wait
 * the request holds no slot; a client that goes away ends it, and the pool
 * cleanup deletes the timer.
 */


#include "ngx_http_scripting_gate_retry.h"
#include "ngx_http_scripting_gate_util.h"


#define NGX_HTTP_SCRIPTING_GATE_JITTER_FULL          0
#define NGX_HTTP_SCRIPTING_GATE_JITTER_EQUAL         1
#define NGX_HTTP_SCRIPTING_GATE_JITTER_DECORRELATED  2
#define NGX_HTTP_SCRIPTING_GATE_JITTER_NONE          3


/* where the proxy module keeps its settings that say a body streams */
typedef struct {
    ngx_int_t                           proxy_index;    /* -1: no proxy */
    ngx_uint_t                          proxy_buffering; /* offsets in its */
    ngx_uint_t                          proxy_version;   /* loc conf, or */
    ngx_uint_t                          proxy_pass_body; /* UNSET_UINT */
} ngx_http_scripting_gate_retry_main_conf_t;


/*
 * A request's retries; it lives in a pool cleanup, so that it survives
 * internal redirects and its timer goes with the request.
 */
typedef struct {
    ngx_http_scripting_gate_retry_t     rt;
    ngx_http_request_t                 *request;
    ngx_event_t                         event;
    ngx_uint_t                          status;     /* the last attempt's */
    ngx_uint_t                          states;     /* $upstream_* before */
    unsigned                            attempting:1; /* answer to come */
    unsigned                            swallow:1;  /* answer discarded */
    unsigned                            streamed:1; /* body not replayable */
} ngx_http_scripting_gate_retry_ctx_t;


/*
 * A name=value parameter of scripting_retry: "offset" is that of the
 * policy's field its setter sets.
 */
typedef char *(*ngx_http_scripting_gate_retry_set_pt)(ngx_conf_t *cf,
    ngx_str_t *param, ngx_str_t *value, void *field);

typedef struct {
    ngx_str_t                             name;     /* "attempts=" */
    ngx_http_scripting_gate_retry_set_pt  set;
    size_t                                offset;
} ngx_http_scripting_gate_retry_param_t;


static ngx_int_t ngx_http_scripting_gate_retry_rewrite_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_retry_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_scripting_gate_retry_defer(ngx_http_request_t *r);
static ngx_uint_t ngx_http_scripting_gate_retry_streamed(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_retry_first(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx);
static void ngx_http_scripting_gate_retry_granted(ngx_http_scripting_gate_t *g,
    ngx_int_t rc);
static void ngx_http_scripting_gate_retry_refused(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx);
static void ngx_http_scripting_gate_retry_go(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx);
static void ngx_http_scripting_gate_retry_wait(ngx_event_t *ev);
static void ngx_http_scripting_gate_retry_timer(ngx_event_t *ev);
static ngx_int_t ngx_http_scripting_gate_retry_reset(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx);
static void ngx_http_scripting_gate_retry_states(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx);
static ngx_uint_t ngx_http_scripting_gate_retry_code(
    ngx_http_scripting_gate_retry_policy_t *rcf, ngx_uint_t status);
static ngx_uint_t ngx_http_scripting_gate_retry_budget(
    ngx_http_scripting_gate_retry_t *rt,
    ngx_http_scripting_gate_retry_policy_t *rcf);
static ngx_int_t ngx_http_scripting_gate_retry_after(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_conf_t *rlcf, ngx_uint_t status,
    ngx_msec_t *ms);
static ngx_int_t ngx_http_scripting_gate_retry_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_retry_attempt_header(
    ngx_http_request_t *r, ngx_http_scripting_gate_retry_ctx_t *ctx,
    ngx_http_scripting_gate_retry_conf_t *rlcf);
static ngx_int_t ngx_http_scripting_gate_retry_body_filter(
    ngx_http_request_t *r, ngx_chain_t *in);
static ngx_http_scripting_gate_retry_ctx_t *ngx_http_scripting_gate_retry_ctx(
    ngx_http_request_t *r, ngx_uint_t create);
static void ngx_http_scripting_gate_retry_cleanup(void *data);
static ngx_int_t ngx_http_scripting_gate_retry_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static char *ngx_http_scripting_gate_retry(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_http_scripting_gate_retry_policy_t *
    ngx_http_scripting_gate_retry_policy(ngx_conf_t *cf);
static char *ngx_http_scripting_gate_retry_param(ngx_conf_t *cf,
    ngx_http_scripting_gate_retry_policy_t *rcf, ngx_str_t *word);
static char *ngx_http_scripting_gate_retry_set_codes(ngx_conf_t *cf,
    ngx_str_t *param, ngx_str_t *value, void *field);
static char *ngx_http_scripting_gate_retry_set_attempts(ngx_conf_t *cf,
    ngx_str_t *param, ngx_str_t *value, void *field);
static char *ngx_http_scripting_gate_retry_set_msec(ngx_conf_t *cf,
    ngx_str_t *param, ngx_str_t *value, void *field);
static char *ngx_http_scripting_gate_retry_set_jitter(ngx_conf_t *cf,
    ngx_str_t *param, ngx_str_t *value, void *field);
static char *ngx_http_scripting_gate_retry_set_budget(ngx_conf_t *cf,
    ngx_str_t *param, ngx_str_t *value, void *field);
static char *ngx_http_scripting_gate_retry_set_budget_min(ngx_conf_t *cf,
    ngx_str_t *param, ngx_str_t *value, void *field);
static char *ngx_http_scripting_gate_retry_after_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_scripting_gate_retry_find_proxy(ngx_conf_t *cf);
static void *ngx_http_scripting_gate_retry_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_scripting_gate_retry_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_scripting_gate_retry_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_scripting_gate_retry_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_scripting_gate_retry_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_scripting_gate_retry_commands[] = {

    { ngx_string("scripting_retry"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_scripting_gate_retry,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("scripting_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_scripting_gate_retry_after_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_scripting_gate_retry_module_ctx = {
    ngx_http_scripting_gate_retry_add_variables, /* preconfiguration */
    ngx_http_scripting_gate_retry_init,    /* postconfiguration */

    ngx_http_scripting_gate_retry_create_main_conf, /* create main conf */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_scripting_gate_retry_create_loc_conf, /* create location conf */
    ngx_http_scripting_gate_retry_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_scripting_gate_retry_module = {
    NGX_MODULE_V1,
    &ngx_http_scripting_gate_retry_module_ctx, /* module context */
    ngx_http_scripting_gate_retry_commands, /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_scripting_gate_retry_count_name =
    ngx_string("scripting_retry_count");


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;
static ngx_http_scripting_gate_defer_pt  ngx_http_scripting_gate_next_defer;


/* the retry budget of requests outside any gate zone, per worker */
static ngx_uint_t  ngx_http_scripting_gate_local_requests;
static ngx_uint_t  ngx_http_scripting_gate_local_retrying;


static ngx_str_t  ngx_http_scripting_gate_jitters[] = {
    ngx_string("full"),
    ngx_string("equal"),
    ngx_string("decorrelated"),
    ngx_string("none"),
    ngx_null_string
};


#define ngx_http_scripting_gate_retry_field(field)                           \
    offsetof(ngx_http_scripting_gate_retry_policy_t, field)


/* the name=value parameters of scripting_retry */
static ngx_http_scripting_gate_retry_param_t
    ngx_http_scripting_gate_retry_params[] =
{
    { ngx_string("on="), ngx_http_scripting_gate_retry_set_codes,
      ngx_http_scripting_gate_retry_field(codes) },

    { ngx_string("attempts="), ngx_http_scripting_gate_retry_set_attempts,
      ngx_http_scripting_gate_retry_field(attempts) },

    { ngx_string("base="), ngx_http_scripting_gate_retry_set_msec,
      ngx_http_scripting_gate_retry_field(base) },

    { ngx_string("cap="), ngx_http_scripting_gate_retry_set_msec,
      ngx_http_scripting_gate_retry_field(cap) },

    { ngx_string("deadline="), ngx_http_scripting_gate_retry_set_msec,
      ngx_http_scripting_gate_retry_field(deadline) },

    { ngx_string("jitter="), ngx_http_scripting_gate_retry_set_jitter,
      ngx_http_scripting_gate_retry_field(jitter) },

    { ngx_string("budget="), ngx_http_scripting_gate_retry_set_budget,
      ngx_http_scripting_gate_retry_field(budget) },

    { ngx_string("budget_min="), ngx_http_scripting_gate_retry_set_budget_min,
      ngx_http_scripting_gate_retry_field(budget_min) },

    { ngx_null_string, NULL, 0 }
};


/* the body is needed for every attempt: read it early for the variables */

static ngx_int_t
ngx_http_scripting_gate_retry_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_retry_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_retry_module);

    if (rlcf->policy == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_scripting_gate_read_json_body(r);
}


/*
 * Precontent phase, once per client request: reads the body, takes the
 * first attempt's slot, and lets the phases go on to the content handler.
 */

static ngx_int_t
ngx_http_scripting_gate_retry_handler(ngx_http_request_t *r)
{
    ngx_int_t                              rc;
    ngx_http_scripting_gate_t             *g;
    ngx_http_scripting_gate_retry_ctx_t   *ctx;
    ngx_http_scripting_gate_retry_conf_t  *rlcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    rlcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_retry_module);

    if (rlcf->policy == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_scripting_gate_retry_ctx(r, 1);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->rt.started || ctx->streamed) {
        /* the first attempt's slot was granted, or an internal redirect */
        return NGX_DECLINED;
    }

    if (ngx_http_scripting_gate_retry_streamed(r)) {
        /* gated once, by the preaccess phase */
        ctx->streamed = 1;
        return NGX_DECLINED;
    }

    g = ngx_http_scripting_gate_get(r, 1);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (g->status != NGX_HTTP_SCRIPTING_GATE_NONE) {
        /*
         * gated already, without retry, in a location that redirected it
         * here: it keeps that one slot
         */
        return NGX_DECLINED;
    }

    /*
     * a body of length 0 is not waited for: an HTTP/2 client may end its
     * stream later, and the proxy would not wait with request buffering off
     */
    if (r->headers_in.content_length_n != 0) {
        rc = ngx_http_scripting_gate_read_body(r);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    ctx->rt.started = ngx_current_msec;

    rc = ngx_http_scripting_gate_prepare(r, g, r->pool);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->rt.gate = (rc == NGX_OK) ? g : NULL;

    ngx_http_scripting_gate_retry_count(&ctx->rt);

    return ngx_http_scripting_gate_retry_first(r, ctx);
}


static ngx_int_t
ngx_http_scripting_gate_retry_first(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_http_scripting_gate_t  *g;

    g = ctx->rt.gate;

    rc = g ? ngx_http_scripting_gate_acquire(g) : NGX_OK;

    switch (rc) {

    case NGX_OK:
        ctx->attempting = 1;
        return NGX_DECLINED;

    case NGX_AGAIN:
        g->handler = ngx_http_scripting_gate_retry_granted;
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
        return NGX_AGAIN;

    default:
        rc = ngx_http_scripting_gate_reject(r, g);

        if (rc == NGX_DECLINED) {
            /* dry run: on without a slot */
            ctx->attempting = 1;
            return NGX_DECLINED;
        }

        ngx_http_scripting_gate_retry_done(&ctx->rt);
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }
}


/* the gate leaves a request to the retry when the retry can gate it */

static ngx_uint_t
ngx_http_scripting_gate_retry_defer(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_retry_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_retry_module);

    if (rlcf->policy && !ngx_http_scripting_gate_retry_streamed(r)) {
        return 1;
    }

    return ngx_http_scripting_gate_next_defer
           ? ngx_http_scripting_gate_next_defer(r) : 0;
}


/*
 * With proxy_request_buffering off, the proxy module sends the body to the
 * upstream as it arrives, so it cannot be sent again: such a request is
 * not retried, and an answer that would have been is logged as it passes
 * through.  The proxy buffers anyway a chunked body it sends as HTTP/1.0,
 * and sends none with proxy_pass_request_body off; a body read already
 * (for scripting_json_var) is whole.
 */

static ngx_uint_t
ngx_http_scripting_gate_retry_streamed(ngx_http_request_t *r)
{
    u_char                                     *conf;
    ngx_http_scripting_gate_retry_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_scripting_gate_retry_module);

    if (gmcf->proxy_index == NGX_ERROR
        || r->request_body
        || (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked))
    {
        return 0;
    }

    conf = r->loc_conf[gmcf->proxy_index];

    if (*(ngx_flag_t *) (conf + gmcf->proxy_buffering)) {
        return 0;
    }

    if (gmcf->proxy_pass_body != NGX_CONF_UNSET_UINT
        && !*(ngx_flag_t *) (conf + gmcf->proxy_pass_body))
    {
        return 0;
    }

    if (r->headers_in.chunked
        && gmcf->proxy_version != NGX_CONF_UNSET_UINT
        && *(ngx_uint_t *) (conf + gmcf->proxy_version)
           != NGX_HTTP_VERSION_11)
    {
        return 0;
    }

    return 1;
}


static void
ngx_http_scripting_gate_retry_granted(ngx_http_scripting_gate_t *g,
    ngx_int_t rc)
{
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r;
    ngx_http_scripting_gate_retry_ctx_t  *ctx;

    r = g->data;
    c = r->connection;

    ctx = ngx_http_scripting_gate_retry_ctx(r, 0);

    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);

    } else if (rc == NGX_OK) {
        ngx_http_scripting_gate_retry_go(r, ctx);

    } else {
        ngx_http_scripting_gate_retry_refused(r, ctx);
    }

    ngx_http_run_posted_requests(c);
}


/* the gate turned an attempt away: the client gets the gate's answer */

static void
ngx_http_scripting_gate_retry_refused(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_scripting_gate_reject(r, ctx->rt.gate);

    if (rc == NGX_DECLINED) {
        /* dry run: on without a slot */
        ngx_http_scripting_gate_retry_go(r, ctx);
        return;
    }

    ngx_http_scripting_gate_retry_done(&ctx->rt);
    ngx_http_finalize_request(r, rc);
}


/*
 * Sends an attempt that has its slot: the first one goes on with the
 * phases where the gate stopped them, a later one runs the content phase
 * again.
 */

static void
ngx_http_scripting_gate_retry_go(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx)
{
    ngx_uint_t                            i;
    ngx_http_phase_handler_t             *ph;
    ngx_http_core_main_conf_t            *cmcf;
#if (NGX_DEBUG)
    ngx_http_scripting_gate_log_value_t   lv;
#endif

    ctx->attempting = 1;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    if (ctx->rt.retries) {
        if (ctx->rt.gate) {
            ngx_http_scripting_gate_retried(ctx->rt.gate);
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "scripting_retry: attempt %ui of \"%V\"",
                       ctx->rt.retries + 1,
                       ngx_http_scripting_gate_log_value(&lv, r->uri.data,
                                                         r->uri.len));

        cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);
        ph = cmcf->phase_engine.handlers;

        for (i = 0; ph[i].checker; i++) {
            if (ph[i].checker == ngx_http_core_content_phase) {
                break;
            }
        }

        if (ph[i].checker == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        r->phase_handler = i;
    }

    ngx_http_core_run_phases(r);
}


/*
 * Posted by the header filter: the swallowed attempt has ended by now;
 * the client is watched while the request waits for its next attempt.
 */

static void
ngx_http_scripting_gate_retry_wait(ngx_event_t *ev)
{
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r;
    ngx_http_scripting_gate_retry_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    if (!r->done) {
        /* a content handler that went on after r->header_only */
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "scripting_retry: the attempt did not end with its "
                      "header, the request cannot be retried");
        ngx_http_finalize_request(r, NGX_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    /* a client that left meanwhile ends the request here */
    ngx_http_test_reading(r);

    if (!c->error) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "scripting_retry: status %ui, next attempt in %M ms",
                       ctx->status, ctx->rt.delay);

        ev->handler = ngx_http_scripting_gate_retry_timer;
        ngx_add_timer(ev, ctx->rt.delay);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_scripting_gate_retry_timer(ngx_event_t *ev)
{
    ngx_int_t                             rc;
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r;
    ngx_http_scripting_gate_t            *g;
    ngx_http_scripting_gate_retry_ctx_t  *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;
    g = ctx->rt.gate;

    if (ngx_http_scripting_gate_retry_reset(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (g) {
        g->retry = 1;
        rc = ngx_http_scripting_gate_acquire(g);

    } else {
        rc = NGX_OK;
    }

    switch (rc) {

    case NGX_OK:
        ngx_http_scripting_gate_retry_go(r, ctx);
        break;

    case NGX_AGAIN:
        g->handler = ngx_http_scripting_gate_retry_granted;
        break;

    default:
        ngx_http_scripting_gate_retry_refused(r, ctx);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * What the last attempt's end left on the request is undone, so that the
 * next answer, or the gate's, is sent as the first one would have been.
 */

static ngx_int_t
ngx_http_scripting_gate_retry_reset(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx)
{
    r->done = 0;
    r->request_complete = 0;
    r->header_only = 0;
    r->err_status = 0;
    ctx->swallow = 0;

    ngx_memzero(&r->headers_out, sizeof(ngx_http_headers_out_t));

    if (ngx_list_init(&r->headers_out.headers, r->pool, 20,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&r->headers_out.trailers, r->pool, 4,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->headers_out.content_length_n = -1;
    r->headers_out.last_modified_time = -1;

    ctx->states = r->upstream_states ? r->upstream_states->nelts : 0;

    return NGX_OK;
}


/*
 * $upstream_status and its kin list every attempt, as after
 * proxy_next_upstream ("429, 200"): the upstream module marks each new
 * upstream of a request with an empty state, which would show as
 * "429 : 200"; the retry's mark is taken out.
 */

static void
ngx_http_scripting_gate_retry_states(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx)
{
    ngx_array_t                *a;
    ngx_http_upstream_t        *u;
    ngx_http_upstream_state_t  *st;

    a = r->upstream_states;

    if (ctx->rt.retries == 0 || a == NULL || a->nelts <= ctx->states + 1) {
        return;
    }

    st = a->elts;

    if (st[ctx->states].peer) {
        return;
    }

    ngx_memmove(&st[ctx->states], &st[ctx->states + 1],
                (a->nelts - ctx->states - 1)
                * sizeof(ngx_http_upstream_state_t));
    a->nelts--;

    u = r->upstream;

    if (u && u->state > &st[ctx->states] && u->state <= &st[a->nelts]) {
        u->state--;
    }
}


/* a request or job under retry counts towards the retry budget */

void
ngx_http_scripting_gate_retry_count(ngx_http_scripting_gate_retry_t *rt)
{
    if (rt->gate) {
        ngx_http_scripting_gate_budget_count(rt->gate, 1);

    } else {
        ngx_http_scripting_gate_local_requests++;
    }

    rt->counted = 1;
}


/* gives back the request's share of the retry budget; idempotent */

void
ngx_http_scripting_gate_retry_done(ngx_http_scripting_gate_retry_t *rt)
{
    if (!rt->counted) {
        return;
    }

    rt->counted = 0;

    if (rt->gate) {
        ngx_http_scripting_gate_budget_count(rt->gate, -1);

        if (rt->budgeted) {
            ngx_http_scripting_gate_budget_give(rt->gate);
        }

    } else {
        ngx_http_scripting_gate_local_requests--;

        if (rt->budgeted) {
            ngx_http_scripting_gate_local_retrying--;
        }
    }

    rt->budgeted = 0;
}


static ngx_uint_t
ngx_http_scripting_gate_retry_code(
    ngx_http_scripting_gate_retry_policy_t *rcf, ngx_uint_t status)
{
    ngx_uint_t  *code, i;

    code = rcf->codes->elts;

    for (i = 0; i < rcf->codes->nelts; i++) {
        if (code[i] == status) {
            return 1;
        }
    }

    return 0;
}


/*
 * The policy, for requests and jobs alike: after an answer with "status"
 * (and its Retry-After: rc NGX_OK and ra ms), NGX_OK when there is to be
 * another attempt, after rt->delay; NGX_DECLINED when the answer is final.
 */

ngx_int_t
ngx_http_scripting_gate_retry_next(ngx_http_scripting_gate_retry_t *rt,
    ngx_http_scripting_gate_retry_conf_t *rlcf, ngx_uint_t status,
    ngx_uint_t method, ngx_int_t rc, ngx_msec_t ra)
{
    ngx_msec_t                               delay, left, elapsed, v;
    ngx_http_scripting_gate_retry_policy_t  *rcf;

    rcf = rlcf->policy;

    if (rcf == NULL
        || !ngx_http_scripting_gate_retry_code(rcf, status)
        || rt->retries + 1 >= rcf->attempts)
    {
        return NGX_DECLINED;
    }

    if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR
        && !rcf->non_idempotent
        && (method & (NGX_HTTP_POST|NGX_HTTP_PATCH|NGX_HTTP_LOCK)))
    {
        return NGX_DECLINED;
    }

    elapsed = ngx_current_msec - rt->started;
    left = (elapsed < rcf->deadline) ? rcf->deadline - elapsed : 0;

    if (rlcf->retry_after && rc == NGX_OK) {
        if (ra > rlcf->retry_after_max || ra >= left) {
            ngx_log_error(NGX_LOG_INFO, rt->log, 0,
                          "scripting_retry: Retry-After of %M ms is beyond "
                          "%s, the answer goes to the client", ra,
                          ra > rlcf->retry_after_max ? "the maximum"
                                                     : "the deadline");
            return NGX_DECLINED;
        }

        /* a little jitter, only ever later, so waiters do not align */
        delay = ra + (ngx_msec_t) ngx_random() % (ngx_min(ra / 10, 1000) + 1);

    } else {
        v = rcf->base << ngx_min(rt->retries, 20);
        v = ngx_min(v, rcf->cap);

        switch (rcf->jitter) {

        case NGX_HTTP_SCRIPTING_GATE_JITTER_FULL:
            delay = v ? (ngx_msec_t) ngx_random() % v : 0;
            break;

        case NGX_HTTP_SCRIPTING_GATE_JITTER_EQUAL:
            delay = v / 2 + (ngx_msec_t) ngx_random() % (v / 2 + 1);
            break;

        case NGX_HTTP_SCRIPTING_GATE_JITTER_DECORRELATED:
            v = rt->delay ? rt->delay * 3 : rcf->base * 3;
            delay = rcf->base
                    + (ngx_msec_t) ngx_random() % (v - rcf->base + 1);
            delay = ngx_min(delay, rcf->cap);
            break;

        default: /* NGX_HTTP_SCRIPTING_GATE_JITTER_NONE */
            delay = v;
        }

        if (delay >= left) {
            return NGX_DECLINED;
        }
    }

    if (!ngx_http_scripting_gate_retry_budget(rt, rcf)) {
        ngx_log_error(NGX_LOG_WARN, rt->log, 0,
                      "scripting_retry: retry budget exhausted, "
                      "the answer goes to the client");
        return NGX_DECLINED;
    }

    rt->delay = delay;

    return NGX_OK;
}


/*
 * Retries under way may be at most "budget" percent of the requests under
 * way (at least "budget_min"), so that retries cannot hammer an upstream
 * that answers everything with 429.  Takes a share when there is one; an
 * adaptive gate needs none.
 */

static ngx_uint_t
ngx_http_scripting_gate_retry_budget(ngx_http_scripting_gate_retry_t *rt,
    ngx_http_scripting_gate_retry_policy_t *rcf)
{
    ngx_uint_t  max;

    if (rt->budgeted) {
        return 1;
    }

    if (rt->gate && ngx_http_scripting_gate_learns(rt->gate)) {
        /*
         * a gate whose limit learns holds the key's attempts, retries
         * included, to what the upstream admits: they cannot pile up on
         * it, and the 429s of a fall of the upstream's limit are its
         * lesson, retried
         */
        return 1;
    }

    if (rt->gate) {
        if (!ngx_http_scripting_gate_budget_take(rt->gate, rcf->budget,
                                                 rcf->budget_min))
        {
            return 0;
        }

    } else {
        max = ngx_max(ngx_http_scripting_gate_local_requests * rcf->budget
                      / 100, rcf->budget_min);

        if (ngx_http_scripting_gate_local_retrying >= max) {
            return 0;
        }

        ngx_http_scripting_gate_local_retrying++;
    }

    rt->budgeted = 1;

    return 1;
}


/*
 * An upstream answer to an attempt that holds a slot: its status is the
 * attempt's outcome, and its Retry-After (rc NGX_OK, ra ms) a cool-down of
 * the key.
 */

void
ngx_http_scripting_gate_retry_answer(ngx_http_scripting_gate_t *g,
    ngx_http_scripting_gate_retry_conf_t *rlcf, ngx_uint_t status,
    ngx_int_t rc, ngx_msec_t ra)
{
    if (g == NULL || !ngx_http_scripting_gate_holding(g)) {
        return;
    }

    ngx_http_scripting_gate_answered(g, status);

    if (rc == NGX_OK
        && rlcf->retry_after
        && (status == NGX_HTTP_TOO_MANY_REQUESTS
            || status == NGX_HTTP_SERVICE_UNAVAILABLE))
    {
        ngx_http_scripting_gate_cooldown(g, ngx_min(ra, rlcf->retry_after_max));
    }
}


/*
 * The Retry-After of an answer that may share or be retried, once per
 * answer: delay-seconds or an HTTP-date; NGX_DECLINED when absent or not
 * looked at, NGX_ERROR (logged) when malformed.
 */

static ngx_int_t
ngx_http_scripting_gate_retry_after(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_conf_t *rlcf, ngx_uint_t status,
    ngx_msec_t *ms)
{
    ngx_uint_t                            i;
    ngx_list_part_t                      *part;
    ngx_table_elt_t                      *h;
    ngx_http_scripting_gate_log_value_t   lv;

    if (!rlcf->retry_after
        || (status != NGX_HTTP_TOO_MANY_REQUESTS
            && status != NGX_HTTP_SERVICE_UNAVAILABLE
            && (rlcf->policy == NULL
                || !ngx_http_scripting_gate_retry_code(rlcf->policy, status))))
    {
        return NGX_DECLINED;
    }

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

        if (h[i].hash != 0
            && h[i].key.len == sizeof("Retry-After") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Retry-After",
                               sizeof("Retry-After") - 1)
               == 0)
        {
            break;
        }
    }

    if (ngx_http_scripting_gate_retry_after_value(&h[i].value, ms) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "scripting_retry: ignoring malformed Retry-After "
                      "\"%V\"",
                      ngx_http_scripting_gate_log_value(&lv, h[i].value.data,
                                               ngx_min(h[i].value.len, 64)));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_retry_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                              rc;
    ngx_uint_t                             status;
    ngx_msec_t                             ra;
    ngx_http_scripting_gate_t             *g;
    ngx_http_scripting_gate_retry_ctx_t   *ctx;
    ngx_http_scripting_gate_retry_conf_t  *rlcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    rlcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_retry_module);
    ctx = ngx_http_scripting_gate_retry_ctx(r, 0);

    if (ctx && ctx->attempting) {
        return ngx_http_scripting_gate_retry_attempt_header(r, ctx, rlcf);
    }

    status = r->headers_out.status;

    /* a request the preaccess phase gated: its answer may cool the key */

    g = ngx_http_scripting_gate_get(r, 0);

    if (g && ngx_http_scripting_gate_holding(g)
        && g->outcome == 0 && r->upstream)
    {
        ra = 0;
        rc = ngx_http_scripting_gate_retry_after(r, rlcf, status, &ra);
        ngx_http_scripting_gate_retry_answer(g, rlcf, status, rc, ra);
    }

    if (ctx && ctx->streamed && r->upstream && rlcf->policy
        && ngx_http_scripting_gate_retry_code(rlcf->policy, status))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "scripting_retry: the upstream's %ui goes to the "
                      "client, the request body was streamed "
                      "(proxy_request_buffering off) and cannot be sent "
                      "again", status);
    }

    return ngx_http_next_header_filter(r);
}


/* the answer to an attempt: final, or swallowed to be retried */

static ngx_int_t
ngx_http_scripting_gate_retry_attempt_header(ngx_http_request_t *r,
    ngx_http_scripting_gate_retry_ctx_t *ctx,
    ngx_http_scripting_gate_retry_conf_t *rlcf)
{
    ngx_int_t             rc;
    ngx_uint_t            status;
    ngx_msec_t            ra;
    ngx_http_upstream_t  *u;

    status = r->headers_out.status;

    ctx->attempting = 0;
    ctx->status = status;

    ngx_http_scripting_gate_retry_states(r, ctx);

    ra = 0;
    rc = ngx_http_scripting_gate_retry_after(r, rlcf, status, &ra);

    ngx_http_scripting_gate_retry_answer(ctx->rt.gate, rlcf, status, rc, ra);

    if (r->cached
        || ngx_http_scripting_gate_retry_next(&ctx->rt, rlcf, status,
                                              r->method, rc, ra)
           != NGX_OK)
    {
        return ngx_http_next_header_filter(r);
    }

    /* swallowed: the client sees nothing of it, no cache stores it */

    ctx->rt.retries++;
    ctx->swallow = 1;

    if (ctx->rt.gate) {
        ngx_http_scripting_gate_release(ctx->rt.gate);
    }

    u = r->upstream;

    if (u) {
#if (NGX_HTTP_CACHE)
        u->cacheable = 0;
#endif
        u->store = 0;
    }

    r->header_only = 1;

    /* the attempt's end takes one reference, the wait keeps this one */
    r->main->count++;

    ctx->event.handler = ngx_http_scripting_gate_retry_wait;
    ctx->event.data = ctx;
    ctx->event.log = r->connection->log;

    ngx_post_event(&ctx->event, &ngx_posted_events);

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_retry_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in)
{
    ngx_chain_t                          *cl;
    ngx_http_scripting_gate_retry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_scripting_gate_retry_module);

    if (ctx == NULL || !ctx->swallow || r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    /* what a handler sends of a swallowed answer despite header_only */

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    return NGX_OK;
}


/*
 * The request's retry context is kept in a pool cleanup (it survives
 * internal redirects, which zero r->ctx) and cached in r->ctx.
 */

static ngx_http_scripting_gate_retry_ctx_t *
ngx_http_scripting_gate_retry_ctx(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t                   *cln;
    ngx_http_scripting_gate_retry_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_scripting_gate_retry_module);
    if (ctx) {
        return ctx;
    }

    /*
     * only an internal redirect zeroes r->ctx: otherwise, a context not
     * found there does not exist (the filters ask on every answer)
     */
    for (cln = r->internal ? r->pool->cleanup : NULL; cln; cln = cln->next) {
        if (cln->handler == ngx_http_scripting_gate_retry_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_scripting_gate_retry_module);
            return ctx;
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool,
                               sizeof(ngx_http_scripting_gate_retry_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_scripting_gate_retry_ctx_t));
    ctx->request = r;
    ctx->rt.log = r->connection->log;

    cln->handler = ngx_http_scripting_gate_retry_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_scripting_gate_retry_module);

    return ctx;
}


static void
ngx_http_scripting_gate_retry_cleanup(void *data)
{
    ngx_http_scripting_gate_retry_ctx_t  *ctx = data;

    if (ctx->event.timer_set) {
        ngx_del_timer(&ctx->event);
    }

    if (ctx->event.posted) {
        ngx_delete_posted_event(&ctx->event);
    }

    ngx_http_scripting_gate_retry_done(&ctx->rt);
}


static ngx_int_t
ngx_http_scripting_gate_retry_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                               *p;
    ngx_http_scripting_gate_retry_ctx_t  *ctx;

    ctx = ngx_http_scripting_gate_retry_ctx(r, 0);

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", ctx ? ctx->rt.retries : 0) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static char *
ngx_http_scripting_gate_retry(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_scripting_gate_retry_conf_t *rlcf = conf;

    ngx_str_t                               *value;
    ngx_uint_t                               i, *code;
    ngx_http_scripting_gate_retry_policy_t  *rcf;

    if (rlcf->policy != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        rlcf->policy = NULL;
        return NGX_CONF_OK;
    }

    rcf = ngx_http_scripting_gate_retry_policy(cf);
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "non_idempotent") == 0) {
            rcf->non_idempotent = 1;
            continue;
        }

        if (ngx_http_scripting_gate_retry_param(cf, rcf, &value[i])
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (rcf->codes->nelts == 0) {
        code = ngx_array_push(rcf->codes);
        if (code == NULL) {
            return NGX_CONF_ERROR;
        }

        *code = NGX_HTTP_TOO_MANY_REQUESTS;
    }

    if (rcf->base == 0 || rcf->cap < rcf->base) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"base\" must be above 0 and not above \"cap\"");
        return NGX_CONF_ERROR;
    }

    rlcf->policy = rcf;

    return NGX_CONF_OK;
}


/* a policy with the defaults, and no codes yet */

static ngx_http_scripting_gate_retry_policy_t *
ngx_http_scripting_gate_retry_policy(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_retry_policy_t  *rcf;

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_retry_policy_t));
    if (rcf == NULL) {
        return NULL;
    }

    rcf->attempts = 3;
    rcf->base = 100;
    rcf->cap = 5000;
    rcf->deadline = 30000;
    rcf->jitter = NGX_HTTP_SCRIPTING_GATE_JITTER_FULL;
    rcf->budget = 20;
    rcf->budget_min = 3;

    rcf->codes = ngx_array_create(cf->pool, 4, sizeof(ngx_uint_t));
    if (rcf->codes == NULL) {
        return NULL;
    }

    return rcf;
}


/* one name=value parameter, set by the setter of its name */

static char *
ngx_http_scripting_gate_retry_param(ngx_conf_t *cf,
    ngx_http_scripting_gate_retry_policy_t *rcf, ngx_str_t *word)
{
    ngx_str_t                               value;
    ngx_http_scripting_gate_retry_param_t  *param;

    for (param = ngx_http_scripting_gate_retry_params;
         param->name.len;
         param++)
    {
        if (ngx_strncmp(word->data, param->name.data, param->name.len) == 0) {
            value.len = word->len - param->name.len;
            value.data = word->data + param->name.len;

            return param->set(cf, word, &value,
                              (u_char *) rcf + param->offset);
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", word);
    return NGX_CONF_ERROR;
}


/*
 * The parameters' setters: "param" is the whole word, for the messages,
 * "value" what follows the "=", "field" the policy's field to set.
 */

static char *
ngx_http_scripting_gate_retry_set_codes(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, void *field)
{
    ngx_array_t  *codes = *(ngx_array_t **) field;

    u_char      *p, *last, *start;
    ngx_int_t    n;
    ngx_uint_t  *code;

    p = value->data;
    last = value->data + value->len;

    while (p < last) {
        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        n = ngx_atoi(start, p - start);

        if (n < 400 || n > 599) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid status code in \"%V\", it must be "
                               "from 400 to 599", param);
            return NGX_CONF_ERROR;
        }

        code = ngx_array_push(codes);
        if (code == NULL) {
            return NGX_CONF_ERROR;
        }

        *code = n;
        p++;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate_retry_set_attempts(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, void *field)
{
    ngx_uint_t  *attempts = field;

    ngx_int_t  n;

    n = ngx_atoi(value->data, value->len);

    if (n < 1 || n > 50) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid attempts \"%V\", it must be from 1 to 50",
                           param);
        return NGX_CONF_ERROR;
    }

    *attempts = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate_retry_set_msec(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, void *field)
{
    ngx_msec_t  *msp = field;

    *msp = ngx_parse_time(value, 0);

    if (*msp == (ngx_msec_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time in \"%V\"", param);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate_retry_set_jitter(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, void *field)
{
    ngx_uint_t  *jitter = field;

    ngx_uint_t  j;

    for (j = 0; ngx_http_scripting_gate_jitters[j].len; j++) {
        if (value->len == ngx_http_scripting_gate_jitters[j].len
            && ngx_strncmp(value->data,
                           ngx_http_scripting_gate_jitters[j].data,
                           value->len) == 0)
        {
            *jitter = j;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid jitter \"%V\", it must be \"full\", "
                       "\"equal\", \"decorrelated\" or \"none\"", param);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_scripting_gate_retry_set_budget(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, void *field)
{
    ngx_uint_t  *budget = field;

    size_t     len;
    ngx_int_t  n;

    len = value->len;

    if (len && value->data[len - 1] == '%') {
        len--;
    }

    n = ngx_atoi(value->data, len);

    if (n == NGX_ERROR || n > 100) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid budget \"%V\", it must be a percentage",
                           param);
        return NGX_CONF_ERROR;
    }

    *budget = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate_retry_set_budget_min(ngx_conf_t *cf, ngx_str_t *param,
    ngx_str_t *value, void *field)
{
    ngx_uint_t  *budget_min = field;

    ngx_int_t  n;

    n = ngx_atoi(value->data, value->len);

    if (n == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid budget_min \"%V\"", param);
        return NGX_CONF_ERROR;
    }

    *budget_min = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_scripting_gate_retry_after_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf)
{
    ngx_http_scripting_gate_retry_conf_t *rlcf = conf;

    ngx_str_t  *value, s;

    if (rlcf->retry_after != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        rlcf->retry_after = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        rlcf->retry_after = 0;

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

        rlcf->retry_after_max = ngx_parse_time(&s, 0);

        if (rlcf->retry_after_max == (ngx_msec_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid max \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Finds where the proxy module keeps proxy_request_buffering and the two
 * settings that decide with it whether a body streams, through its
 * directive table: the module neither links against the proxy module
 * (nginx may be built without it) nor assumes its configuration's layout.
 */

static void
ngx_http_scripting_gate_retry_find_proxy(ngx_conf_t *cf)
{
    ngx_uint_t                                  i;
    ngx_module_t                               *m;
    ngx_command_t                              *cmd;
    ngx_http_scripting_gate_retry_main_conf_t  *gmcf;

    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                        ngx_http_scripting_gate_retry_module);
    gmcf->proxy_index = NGX_ERROR;
    gmcf->proxy_version = NGX_CONF_UNSET_UINT;
    gmcf->proxy_pass_body = NGX_CONF_UNSET_UINT;

    m = NULL;

    for (i = 0; cf->cycle->modules[i]; i++) {
        if (cf->cycle->modules[i]->type == NGX_HTTP_MODULE
            && ngx_strcmp(cf->cycle->modules[i]->name,
                          "ngx_http_proxy_module") == 0)
        {
            m = cf->cycle->modules[i];
            break;
        }
    }

    if (m == NULL) {
        return;
    }

    for (cmd = m->commands; cmd->name.len; cmd++) {

        if (cmd->conf != NGX_HTTP_LOC_CONF_OFFSET) {
            continue;
        }

        if (cmd->set == ngx_conf_set_flag_slot
            && ngx_strcmp(cmd->name.data, "proxy_request_buffering") == 0)
        {
            gmcf->proxy_index = m->ctx_index;
            gmcf->proxy_buffering = cmd->offset;

        } else if (cmd->set == ngx_conf_set_flag_slot
                   && ngx_strcmp(cmd->name.data, "proxy_pass_request_body")
                      == 0)
        {
            gmcf->proxy_pass_body = cmd->offset;

        } else if (cmd->set == ngx_conf_set_enum_slot
                   && ngx_strcmp(cmd->name.data, "proxy_http_version") == 0)
        {
            gmcf->proxy_version = cmd->offset;
        }
    }
}


static void *
ngx_http_scripting_gate_retry_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_scripting_gate_retry_main_conf_t));
}


static void *
ngx_http_scripting_gate_retry_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_retry_conf_t  *conf;

    conf = ngx_palloc(cf->pool, sizeof(ngx_http_scripting_gate_retry_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->policy = NGX_CONF_UNSET_PTR;
    conf->retry_after = NGX_CONF_UNSET;
    conf->retry_after_max = NGX_CONF_UNSET_MSEC;

    return conf;
}


static char *
ngx_http_scripting_gate_retry_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_scripting_gate_retry_conf_t *prev = parent;
    ngx_http_scripting_gate_retry_conf_t *conf = child;

    ngx_conf_merge_ptr_value(conf->policy, prev->policy, NULL);
    ngx_conf_merge_value(conf->retry_after, prev->retry_after, 1);
    ngx_conf_merge_msec_value(conf->retry_after_max, prev->retry_after_max,
                              180000);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_scripting_gate_retry_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_scripting_gate_retry_count_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_scripting_gate_retry_variable;

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_retry_init(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_retry_find_proxy(cf);

    if (ngx_http_scripting_gate_add_handlers(cf,
                                ngx_http_scripting_gate_retry_rewrite_handler,
                                ngx_http_scripting_gate_retry_handler)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_scripting_gate_next_defer = ngx_http_scripting_gate_defer;
    ngx_http_scripting_gate_defer = ngx_http_scripting_gate_retry_defer;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_scripting_gate_retry_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_scripting_gate_retry_body_filter;

    return NGX_OK;
}
