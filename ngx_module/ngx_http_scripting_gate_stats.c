
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Stats: the status endpoint.  The figures of every zone are copied under
 * the zone's mutex into the request's pool (nothing else is done while it
 * is held), then rendered as JSON (jansson), as the Prometheus text
 * exposition format, or as a self-contained HTML page that polls the JSON.
 */


#include "ngx_http_scripting_gate_async.h"
#include "ngx_http_scripting_gate_stats_html.h"
#include <jansson.h>


#define NGX_HTTP_SCRIPTING_GATE_STATS_MAX_KEYS    1000

#define NGX_HTTP_SCRIPTING_GATE_STATS_JSON        0
#define NGX_HTTP_SCRIPTING_GATE_STATS_PROMETHEUS  1
#define NGX_HTTP_SCRIPTING_GATE_STATS_HTML        2

/*
 * room for a sample line besides its labels: the longest family name,
 * an "le" label and two numbers
 */
#define NGX_HTTP_SCRIPTING_GATE_STATS_LINE        160


/* scripting_gate_stats of a location */
typedef struct {
    ngx_uint_t                          max_keys;
    ngx_flag_t                          reset;
} ngx_http_scripting_gate_stats_conf_t;


/* a Prometheus family whose value is an ngx_uint_t at "offset" */
typedef struct {
    char                               *name;
    char                               *type;
    char                               *help;
    size_t                              offset;
    ngx_uint_t                          ms;         /* thousandths: ms, */
                                                    /* or rate per 1000 s */
    ngx_uint_t                          redis;      /* of Redis zones only */
} ngx_http_scripting_gate_stats_family_t;


/* the response text, appended to a chain of pool buffers */
typedef struct {
    ngx_pool_t                         *pool;
    ngx_chain_t                        *out;
    ngx_chain_t                       **last;
    ngx_buf_t                          *buf;
    off_t                               size;
} ngx_http_scripting_gate_stats_text_t;


static ngx_int_t ngx_http_scripting_gate_stats_handler(ngx_http_request_t *r);
static char *ngx_http_scripting_gate_stats(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_scripting_gate_stats_create_loc_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_scripting_gate_stats_format(ngx_http_request_t *r,
    ngx_uint_t *format);
static ngx_int_t ngx_http_scripting_gate_stats_html(ngx_http_request_t *r,
    ngx_chain_t *out);
static ngx_int_t ngx_http_scripting_gate_stats_send(ngx_http_request_t *r,
    ngx_chain_t *out);
static ngx_int_t ngx_http_scripting_gate_stats_json(ngx_http_request_t *r,
    ngx_array_t *zones, ngx_chain_t *out);
static json_t *ngx_http_scripting_gate_stats_json_root(ngx_http_request_t *r,
    ngx_array_t *zones);
static json_t *ngx_http_scripting_gate_stats_json_zone(
    ngx_http_scripting_gate_zone_stats_t *z);
static json_t *ngx_http_scripting_gate_stats_json_keys(
    ngx_http_scripting_gate_zone_stats_t *z);
static json_t *ngx_http_scripting_gate_stats_counters(
    ngx_http_scripting_gate_key_stats_t *k);
static json_t *ngx_http_scripting_gate_stats_hist(
    ngx_http_scripting_gate_hist_t *h);
static ngx_int_t ngx_http_scripting_gate_stats_prometheus(
    ngx_http_request_t *r, ngx_array_t *zones, ngx_chain_t *out);
static ngx_int_t ngx_http_scripting_gate_stats_family(
    ngx_http_scripting_gate_stats_text_t *t,
    ngx_http_scripting_gate_stats_family_t *f);
static ngx_int_t ngx_http_scripting_gate_stats_family_of(
    ngx_http_scripting_gate_stats_text_t *t,
    ngx_http_scripting_gate_stats_family_t *f, ngx_array_t *zones);
static ngx_int_t ngx_http_scripting_gate_stats_keys_prometheus(
    ngx_http_scripting_gate_stats_text_t *t, ngx_array_t *zones);
static ngx_int_t ngx_http_scripting_gate_stats_zones_prometheus(
    ngx_http_scripting_gate_stats_text_t *t, ngx_array_t *zones);
static ngx_int_t ngx_http_scripting_gate_stats_hists_prometheus(
    ngx_http_scripting_gate_stats_text_t *t, ngx_array_t *zones);
static ngx_int_t ngx_http_scripting_gate_stats_hist_prometheus(
    ngx_http_scripting_gate_stats_text_t *t, char *name, ngx_str_t *label,
    ngx_http_scripting_gate_hist_t *h);
static ngx_int_t ngx_http_scripting_gate_stats_labels(ngx_pool_t *pool,
    ngx_array_t *zones);
static ngx_int_t ngx_http_scripting_gate_stats_text(
    ngx_http_scripting_gate_stats_text_t *t, size_t max, const char *fmt, ...);
static u_char *ngx_http_scripting_gate_stats_escape(u_char *p, ngx_str_t *s);
static json_t *ngx_http_scripting_gate_stats_jobs_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_stats_jobs_prometheus(
    ngx_http_request_t *r, ngx_http_scripting_gate_stats_text_t *t);
static u_char *ngx_http_scripting_gate_stats_seconds(u_char *p, ngx_msec_t ms);


static ngx_command_t  ngx_http_scripting_gate_stats_commands[] = {

    { ngx_string("scripting_gate_stats"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_scripting_gate_stats,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_scripting_gate_status_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_scripting_gate_stats_create_loc_conf, /* create location conf */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_scripting_gate_status_module = {
    NGX_MODULE_V1,
    &ngx_http_scripting_gate_status_module_ctx, /* module context */
    ngx_http_scripting_gate_stats_commands, /* module directives */
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


#define ngx_http_scripting_gate_stats_key_field(field)                        \
    offsetof(ngx_http_scripting_gate_key_stats_t, field)

#define ngx_http_scripting_gate_stats_zone_field(field)                       \
    offsetof(ngx_http_scripting_gate_zone_stats_t, field)


/*
 * The per-key families.  The gauge of the queue is "waiting", not
 * "queued": "queued" is the counter family scripting_gate_queued_total,
 * and OpenMetrics names a counter without its _total suffix, so a gauge of
 * the same name would clash with it there.
 */
static ngx_http_scripting_gate_stats_family_t
    ngx_http_scripting_gate_stats_key_families[] =
{
    { "limit", "gauge",
      "Requests allowed in flight to the upstream (an adaptive key's "
      "ceiling).",
      ngx_http_scripting_gate_stats_key_field(limit), 0, 0 },

    { "active", "gauge",
      "Requests in flight to the upstream.",
      ngx_http_scripting_gate_stats_key_field(active), 0, 0 },

    { "waiting", "gauge",
      "Requests waiting in the queue.",
      ngx_http_scripting_gate_stats_key_field(queued), 0, 0 },

    { "cooldown_seconds", "gauge",
      "Seconds left of the key's cool-down.",
      ngx_http_scripting_gate_stats_key_field(cooldown), 1, 0 },

    { "passed_total", "counter",
      "Requests that got a slot.",
      ngx_http_scripting_gate_stats_key_field(passed), 0, 0 },

    { "queued_total", "counter",
      "Requests that had to queue.",
      ngx_http_scripting_gate_stats_key_field(queued_total), 0, 0 },

    { "rejected_total", "counter",
      "Requests rejected: queue full or key cooling down.",
      ngx_http_scripting_gate_stats_key_field(rejected), 0, 0 },

    { "timed_out_total", "counter",
      "Requests rejected after their queue timeout.",
      ngx_http_scripting_gate_stats_key_field(timed_out), 0, 0 },

    { "upstream_429_total", "counter",
      "429 answers of the upstream.",
      ngx_http_scripting_gate_stats_key_field(upstream_429), 0, 0 },

    { "retries_total", "counter",
      "Retries sent to the upstream.",
      ngx_http_scripting_gate_stats_key_field(retries), 0, 0 },

    { "effective_limit", "gauge",
      "Requests let in flight to the upstream now (what an adaptive key "
      "learnt).",
      ngx_http_scripting_gate_stats_key_field(effective_limit), 0, 0 },

    { "limit_decreases_total", "counter",
      "Times an adaptive key's limit went down after a 429 or 503.",
      ngx_http_scripting_gate_stats_key_field(decreases), 0, 0 },

    { "limit_increases_total", "counter",
      "Times an adaptive key's limit went up after successes.",
      ngx_http_scripting_gate_stats_key_field(increases), 0, 0 },

    { "rate_per_second", "gauge",
      "Attempts allowed to start per second (0: no rate).",
      ngx_http_scripting_gate_stats_key_field(rate), 1, 0 },

    { "cluster_active", "gauge",
      "Requests in flight to the upstream from every node sharing the "
      "Redis, as this node last saw them.",
      ngx_http_scripting_gate_stats_key_field(cluster_active), 0, 1 },

    { "cluster_waiting", "gauge",
      "Requests waiting at Redis from every node, as this node last saw "
      "them.",
      ngx_http_scripting_gate_stats_key_field(cluster_queued), 0, 1 },

    { NULL, NULL, NULL, 0, 0, 0 }
};


static ngx_http_scripting_gate_stats_family_t
    ngx_http_scripting_gate_stats_zone_families[] =
{
    { "keys", "gauge",
      "Keys in the zone.",
      ngx_http_scripting_gate_stats_zone_field(nkeys), 0, 0 },

    { "evicted_total", "counter",
      "Idle keys evicted to make room.",
      ngx_http_scripting_gate_stats_zone_field(evicted), 0, 0 },

    { "no_memory_total", "counter",
      "Requests refused because the zone was full.",
      ngx_http_scripting_gate_stats_zone_field(no_memory), 0, 0 },

    { "retry_budget_exhausted_total", "counter",
      "Retries refused by the retry budget.",
      ngx_http_scripting_gate_stats_zone_field(exhausted), 0, 0 },

    { "redis_up", "gauge",
      "Whether the zone's Redis answers (0: the node gates on its own, or "
      "refuses, as its fallback says).",
      ngx_http_scripting_gate_stats_zone_field(redis_up), 0, 1 },

    { "redis_rtt_seconds", "gauge",
      "Round-trip time of the zone's Redis (a moving average).",
      ngx_http_scripting_gate_stats_zone_field(redis_rtt), 2, 1 },

    { "redis_state_changes_total", "counter",
      "Times the zone's Redis was lost or found again.",
      ngx_http_scripting_gate_stats_zone_field(redis_changes), 0, 1 },

    { NULL, NULL, NULL, 0, 0, 0 }
};


/* per zone, histograms whose "offset" is that of their buckets */
static ngx_http_scripting_gate_stats_family_t
    ngx_http_scripting_gate_stats_hist_families[] =
{
    { "queue_wait_seconds", "histogram",
      "Time spent queued.",
      ngx_http_scripting_gate_stats_zone_field(wait), 1, 0 },

    { "upstream_seconds", "histogram",
      "Time a slot was held by an attempt.",
      ngx_http_scripting_gate_stats_zone_field(upstream), 1, 0 },

    { NULL, NULL, NULL, 0, 0, 0 }
};


#define ngx_http_scripting_gate_stats_jobs_field(field)                       \
    offsetof(ngx_http_scripting_gate_jobs_shctx_t, field)


/* per jobs zone; the JSON names are the families' without "jobs_", "_total" */
static ngx_http_scripting_gate_stats_family_t
    ngx_http_scripting_gate_stats_jobs_families[] =
{
    { "jobs_stored", "gauge",
      "Jobs in the store, finished ones included.",
      ngx_http_scripting_gate_stats_jobs_field(stored), 0, 0 },

    { "jobs_queued", "gauge",
      "Jobs waiting to start.",
      ngx_http_scripting_gate_stats_jobs_field(queued), 0, 0 },

    { "jobs_running", "gauge",
      "Jobs under way.",
      ngx_http_scripting_gate_stats_jobs_field(running), 0, 0 },

    { "jobs_accepted_total", "counter",
      "Jobs accepted with 202.",
      ngx_http_scripting_gate_stats_jobs_field(accepted), 0, 0 },

    { "jobs_refused_total", "counter",
      "Async requests refused with 503: the store was full.",
      ngx_http_scripting_gate_stats_jobs_field(refused), 0, 0 },

    { "jobs_succeeded_total", "counter",
      "Jobs that ended with an upstream answer below 400.",
      ngx_http_scripting_gate_stats_jobs_field(succeeded), 0, 0 },

    { "jobs_failed_total", "counter",
      "Jobs that failed.",
      ngx_http_scripting_gate_stats_jobs_field(failed), 0, 0 },

    { "jobs_expired_total", "counter",
      "Finished jobs whose result expired.",
      ngx_http_scripting_gate_stats_jobs_field(expired), 0, 0 },

    { "jobs_callbacks_delivered_total", "counter",
      "Callbacks delivered.",
      ngx_http_scripting_gate_stats_jobs_field(callbacks_delivered), 0, 0 },

    { "jobs_callbacks_failed_total", "counter",
      "Callbacks given up.",
      ngx_http_scripting_gate_stats_jobs_field(callbacks_failed), 0, 0 },

    { NULL, NULL, NULL, 0, 0, 0 }
};


static void *
ngx_http_scripting_gate_stats_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_stats_conf_t));
}


static char *
ngx_http_scripting_gate_stats(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_scripting_gate_stats_conf_t *scf = conf;

    ngx_int_t                  n;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_scripting_gate_stats_handler) {
        return "is duplicate";
    }

    value = cf->args->elts;

    scf->max_keys = NGX_HTTP_SCRIPTING_GATE_STATS_MAX_KEYS;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "reset=on") == 0) {
            scf->reset = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "reset=off") == 0) {
            scf->reset = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_keys=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);

            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_keys \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            scf->max_keys = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    clcf->handler = ngx_http_scripting_gate_stats_handler;

    /* nor does the status endpoint: a scrape is no job */
    ngx_http_scripting_gate_async_off(cf);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_scripting_gate_stats_handler(ngx_http_request_t *r)
{
    ngx_int_t                              rc;
    ngx_uint_t                             format;
    ngx_chain_t                            out;
    ngx_array_t                           *zones;
    ngx_http_scripting_gate_stats_conf_t  *scf;

    static ngx_str_t  allow = ngx_string("GET, HEAD");
    static ngx_str_t  allow_delete = ngx_string("GET, HEAD, DELETE");

    scf = ngx_http_get_module_loc_conf(r,
                                       ngx_http_scripting_gate_status_module);

    if (r->method == NGX_HTTP_DELETE && scf->reset) {
        ngx_http_scripting_gate_reset(r);
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "scripting_gate_stats: counters reset");
        return NGX_HTTP_NO_CONTENT;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_scripting_gate_add_header(r, "Allow",
                                               scf->reset
                                               ? &allow_delete : &allow)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_scripting_gate_stats_format(r, &format);
    if (rc != NGX_OK) {
        return rc;
    }

    if (format == NGX_HTTP_SCRIPTING_GATE_STATS_HTML) {
        rc = ngx_http_scripting_gate_stats_html(r, &out);

    } else {
        zones = ngx_http_scripting_gate_snapshot(r, scf->max_keys);
        if (zones == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = (format == NGX_HTTP_SCRIPTING_GATE_STATS_PROMETHEUS)
             ? ngx_http_scripting_gate_stats_prometheus(r, zones, &out)
             : ngx_http_scripting_gate_stats_json(r, zones, &out);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_scripting_gate_stats_send(r, &out);
}


/*
 * The format asked for with ?format=, else the page for a browser's
 * Accept; NGX_OK, or the status to answer with.
 */

static ngx_int_t
ngx_http_scripting_gate_stats_format(ngx_http_request_t *r,
    ngx_uint_t *format)
{
    ngx_str_t         arg;
    ngx_table_elt_t  *accept;

    static ngx_str_t  vary = ngx_string("Accept");      /* the header, too */

    *format = NGX_HTTP_SCRIPTING_GATE_STATS_JSON;

    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK) {

        if (arg.len == 4 && ngx_strncmp(arg.data, "json", 4) == 0) {
            *format = NGX_HTTP_SCRIPTING_GATE_STATS_JSON;

        } else if (arg.len == 10 && ngx_strncmp(arg.data, "prometheus", 10)
                                    == 0)
        {
            *format = NGX_HTTP_SCRIPTING_GATE_STATS_PROMETHEUS;

        } else if (arg.len == 4 && ngx_strncmp(arg.data, "html", 4) == 0) {
            *format = NGX_HTTP_SCRIPTING_GATE_STATS_HTML;

        } else {
            return NGX_HTTP_BAD_REQUEST;
        }

        return NGX_OK;
    }

    /* a browser pointed at the bare URL gets the page */

    accept = ngx_http_scripting_gate_header_in(r, &vary);

    if (accept
        && ngx_strlcasestrn(accept->value.data,
                            accept->value.data + accept->value.len,
                            (u_char *) "text/html", 9 - 1)
           != NULL)
    {
        *format = NGX_HTTP_SCRIPTING_GATE_STATS_HTML;
    }

    /* the answer depends on Accept only when no format is asked for */

    if (ngx_http_scripting_gate_add_header(r, "Vary", &vary) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/* the page: static, it polls the JSON itself */

static ngx_int_t
ngx_http_scripting_gate_stats_html(ngx_http_request_t *r, ngx_chain_t *out)
{
    ngx_buf_t  *b;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = (u_char *) ngx_http_scripting_gate_stats_page;
    b->last = b->pos + sizeof(ngx_http_scripting_gate_stats_page) - 1;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out->buf = b;
    out->next = NULL;

    ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    r->headers_out.content_length_n = b->last - b->pos;

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_stats_send(ngx_http_request_t *r, ngx_chain_t *out)
{
    ngx_int_t  rc;

    static ngx_str_t  no_cache = ngx_string("no-cache");

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;

    /* live figures: a cache in between would show a frozen page */

    if (ngx_http_scripting_gate_add_header(r, "Cache-Control", &no_cache)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out);
}


static ngx_int_t
ngx_http_scripting_gate_stats_json(ngx_http_request_t *r, ngx_array_t *zones,
    ngx_chain_t *out)
{
    char       *s;
    json_t     *root;
    ngx_buf_t  *b;

    /* jansson allocates from the request's pool: nothing to free */

    ngx_http_scripting_gate_json_use_pool(r->pool);

    root = ngx_http_scripting_gate_stats_json_root(r, zones);
    s = root ? json_dumps(root, JSON_COMPACT) : NULL;

    ngx_http_scripting_gate_json_use_pool(NULL);

    if (s == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "scripting_gate_stats: building the JSON failed");
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = (u_char *) s;
    b->last = b->pos + ngx_strlen(s);
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out->buf = b;
    out->next = NULL;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_length_n = b->last - b->pos;

    return NGX_OK;
}


static json_t *
ngx_http_scripting_gate_stats_json_root(ngx_http_request_t *r,
    ngx_array_t *zones)
{
    json_t                                     *root, *jzones;
    ngx_uint_t                                  i;
    ngx_time_t                                 *tp;
    ngx_http_scripting_gate_zone_stats_t       *z;
    ngx_http_scripting_gate_async_main_conf_t  *amcf;

    root = json_object();
    jzones = json_object();

    if (root == NULL || jzones == NULL
        || json_object_set_new(root, "zones", jzones) != 0)
    {
        return NULL;
    }

    z = zones->elts;

    for (i = 0; i < zones->nelts; i++) {
        if (json_object_setn_new(jzones, (char *) z[i].name.data,
                                 z[i].name.len,
                                 ngx_http_scripting_gate_stats_json_zone(&z[i]))
            != 0)
        {
            return NULL;
        }
    }

    /* "jobs" only with async jobs configured: a zone of jobs each */

    amcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_scripting_gate_async_module);

    if (amcf->jobs_zones.nelts
        && json_object_set_new(root, "jobs",
                               ngx_http_scripting_gate_stats_jobs_json(r))
           != 0)
    {
        return NULL;
    }

    tp = ngx_timeofday();

    if (json_object_set_new(root, "time_ms",
                            json_integer((json_int_t) tp->sec * 1000
                                         + tp->msec))
        || json_object_set_new(root, "pid", json_integer((json_int_t) ngx_pid)))
    {
        return NULL;
    }

    return root;
}


static json_t *
ngx_http_scripting_gate_stats_json_zone(
    ngx_http_scripting_gate_zone_stats_t *z)
{
    json_t  *jkeys, *totals, *jz;

    jkeys = ngx_http_scripting_gate_stats_json_keys(z);
    if (jkeys == NULL) {
        return NULL;
    }

    totals = ngx_http_scripting_gate_stats_counters(&z->totals);

    if (totals == NULL
        || json_object_set_new(totals, "active",
                               json_integer(z->totals.active))
        || json_object_set_new(totals, "queued",
                               json_integer(z->totals.queued)))
    {
        return NULL;
    }

    jz = json_pack("{s:o, s:o, s:I, s:b, s:I, s:I, s:{s:I, s:I, s:I},"
                     " s:{s:o, s:o}}",
                     "keys", jkeys,
                     "totals", totals,
                     "keys_count", (json_int_t) z->nkeys,
                     "keys_truncated", z->nkeys > z->keys.nelts,
                     "evicted", (json_int_t) z->evicted,
                     "no_memory", (json_int_t) z->no_memory,
                     "retry_budget",
                     "requests", (json_int_t) z->requests,
                     "retrying", (json_int_t) z->retrying,
                     "exhausted", (json_int_t) z->exhausted,
                     "histograms",
                     "queue_wait_ms",
                     ngx_http_scripting_gate_stats_hist(&z->wait),
                     "upstream_ms",
                     ngx_http_scripting_gate_stats_hist(&z->upstream));

    if (jz == NULL || !z->redis) {
        return jz;
    }

    if (json_object_set_new(jz, "redis",
            json_pack("{s:s, s:f, s:s, s:I}",
                      "state", z->redis_up ? "up" : "down",
                      "rtt_ms", z->redis_rtt / 1000.0,
                      "fallback", z->redis_closed ? "closed" : "local",
                      "changes", (json_int_t) z->redis_changes)))
    {
        return NULL;
    }

    return jz;
}


static json_t *
ngx_http_scripting_gate_stats_json_keys(
    ngx_http_scripting_gate_zone_stats_t *z)
{
    json_t                               *jkeys, *jk;
    ngx_uint_t                            j;
    ngx_http_scripting_gate_key_stats_t  *k;

    jkeys = json_object();
    if (jkeys == NULL) {
        return NULL;
    }

    k = z->keys.elts;

    for (j = 0; j < z->keys.nelts; j++) {
        jk = ngx_http_scripting_gate_stats_counters(&k[j]);

        if (jk == NULL
            || json_object_set_new(jk, "limit", json_integer(k[j].limit))
            || json_object_set_new(jk, "active", json_integer(k[j].active))
            || json_object_set_new(jk, "queued", json_integer(k[j].queued))
            || json_object_set_new(jk, "cooldown_ms",
                                   json_integer(k[j].cooldown))
            || json_object_set_new(jk, "effective_limit",
                                   json_integer(k[j].effective_limit))
            || (k[j].rate
                && json_object_set_new(jk, "rate",
                                       json_real(k[j].rate / 1000.0)))
            || json_object_set_new(jk, "limit_decreases",
                                   json_integer(k[j].decreases))
            || json_object_set_new(jk, "limit_increases",
                                   json_integer(k[j].increases))
            || (z->redis
                && (json_object_set_new(jk, "cluster_active",
                                        json_integer(k[j].cluster_active))
                    || json_object_set_new(jk, "cluster_queued",
                                       json_integer(k[j].cluster_queued))))
            || json_object_setn_new(jkeys, (char *) k[j].key.data,
                                    k[j].key.len, jk))
        {
            return NULL;
        }
    }

    return jkeys;
}


static json_t *
ngx_http_scripting_gate_stats_counters(ngx_http_scripting_gate_key_stats_t *k)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                     "passed", (json_int_t) k->passed,
                     "queued_total", (json_int_t) k->queued_total,
                     "rejected", (json_int_t) k->rejected,
                     "timed_out", (json_int_t) k->timed_out,
                     "upstream_429", (json_int_t) k->upstream_429,
                     "retries", (json_int_t) k->retries);
}


/* buckets are cumulative, as in Prometheus, so that the two agree */

static json_t *
ngx_http_scripting_gate_stats_hist(ngx_http_scripting_gate_hist_t *h)
{
    json_t      *buckets, *b;
    ngx_uint_t   i, sum;

    buckets = json_array();
    if (buckets == NULL) {
        return NULL;
    }

    sum = 0;

    for (i = 0; i < NGX_HTTP_SCRIPTING_GATE_BUCKETS; i++) {
        sum += h->count[i];

        if (i == NGX_HTTP_SCRIPTING_GATE_BUCKETS - 1) {
            b = json_pack("{s:s, s:I}", "le", "+Inf",
                          "count", (json_int_t) sum);

        } else {
            b = json_pack("{s:I, s:I}",
                          "le", (json_int_t) ngx_http_scripting_gate_buckets[i],
                          "count", (json_int_t) sum);
        }

        if (b == NULL || json_array_append_new(buckets, b) != 0) {
            return NULL;
        }
    }

    return json_pack("{s:o, s:I, s:I}", "buckets", buckets,
                     "sum", (json_int_t) h->sum,
                     "count", (json_int_t) h->total);
}


static ngx_int_t
ngx_http_scripting_gate_stats_prometheus(ngx_http_request_t *r,
    ngx_array_t *zones, ngx_chain_t *out)
{
    ngx_http_scripting_gate_stats_text_t  t;

    if (ngx_http_scripting_gate_stats_labels(r->pool, zones) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&t, sizeof(ngx_http_scripting_gate_stats_text_t));
    t.pool = r->pool;
    t.last = &t.out;

    /* one family after the other, as the format requires */

    if (ngx_http_scripting_gate_stats_keys_prometheus(&t, zones) != NGX_OK
        || ngx_http_scripting_gate_stats_zones_prometheus(&t, zones)
           != NGX_OK
        || ngx_http_scripting_gate_stats_hists_prometheus(&t, zones)
           != NGX_OK
        || ngx_http_scripting_gate_stats_jobs_prometheus(r, &t) != NGX_OK)
    {
        return NGX_ERROR;
    }

    *out = *t.out;
    t.buf->last_buf = (r == r->main) ? 1 : 0;
    t.buf->last_in_chain = 1;

    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_length_n = t.size;

    return NGX_OK;
}


/* a family's HELP and TYPE lines */

static ngx_int_t
ngx_http_scripting_gate_stats_family(ngx_http_scripting_gate_stats_text_t *t,
    ngx_http_scripting_gate_stats_family_t *f)
{
    return ngx_http_scripting_gate_stats_text(t, 512,
               "# HELP scripting_gate_%s %s\n"
               "# TYPE scripting_gate_%s %s\n",
               f->name, f->help, f->name, f->type);
}


/* a family of Redis zones is shown where there is one */

static ngx_int_t
ngx_http_scripting_gate_stats_family_of(
    ngx_http_scripting_gate_stats_text_t *t,
    ngx_http_scripting_gate_stats_family_t *f, ngx_array_t *zones)
{
    ngx_uint_t                             i;
    ngx_http_scripting_gate_zone_stats_t  *z;

    z = zones->elts;

    for (i = 0; f->redis && i < zones->nelts; i++) {
        if (z[i].redis) {
            break;
        }
    }

    if (f->redis && i == zones->nelts) {
        return NGX_OK;
    }

    return ngx_http_scripting_gate_stats_family(t, f);
}


static ngx_int_t
ngx_http_scripting_gate_stats_keys_prometheus(
    ngx_http_scripting_gate_stats_text_t *t, ngx_array_t *zones)
{
    ngx_int_t                                rc;
    ngx_uint_t                               i, j, v;
    ngx_http_scripting_gate_key_stats_t     *k;
    ngx_http_scripting_gate_zone_stats_t    *z;
    ngx_http_scripting_gate_stats_family_t  *f;

    z = zones->elts;

    for (f = ngx_http_scripting_gate_stats_key_families; f->name; f++) {

        if (ngx_http_scripting_gate_stats_family_of(t, f, zones) != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < zones->nelts; i++) {
            if (f->redis && !z[i].redis) {
                continue;
            }

            k = z[i].keys.elts;

            for (j = 0; j < z[i].keys.nelts; j++) {
                v = *(ngx_uint_t *) ((u_char *) &k[j] + f->offset);

                if (f->ms) {
                    rc = ngx_http_scripting_gate_stats_text(t,
                            k[j].label.len + NGX_HTTP_SCRIPTING_GATE_STATS_LINE,
                            "scripting_gate_%s%V %ui.%03ui\n",
                            f->name, &k[j].label, v / 1000, v % 1000);

                } else {
                    rc = ngx_http_scripting_gate_stats_text(t,
                            k[j].label.len + NGX_HTTP_SCRIPTING_GATE_STATS_LINE,
                            "scripting_gate_%s%V %ui\n",
                            f->name, &k[j].label, v);
                }

                if (rc != NGX_OK) {
                    return NGX_ERROR;
                }
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_stats_zones_prometheus(
    ngx_http_scripting_gate_stats_text_t *t, ngx_array_t *zones)
{
    ngx_int_t                                rc;
    ngx_uint_t                               i, v;
    ngx_http_scripting_gate_zone_stats_t    *z;
    ngx_http_scripting_gate_stats_family_t  *f;

    z = zones->elts;

    for (f = ngx_http_scripting_gate_stats_zone_families; f->name; f++) {

        if (ngx_http_scripting_gate_stats_family_of(t, f, zones) != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < zones->nelts; i++) {
            if (f->redis && !z[i].redis) {
                continue;
            }

            v = *(ngx_uint_t *) ((u_char *) &z[i] + f->offset);

            if (f->ms == 2) {
                /* microseconds */
                rc = ngx_http_scripting_gate_stats_text(t,
                        z[i].label.len + NGX_HTTP_SCRIPTING_GATE_STATS_LINE,
                        "scripting_gate_%s{%V} %ui.%06ui\n", f->name,
                        &z[i].label, v / 1000000, v % 1000000);

            } else {
                rc = ngx_http_scripting_gate_stats_text(t,
                        z[i].label.len + NGX_HTTP_SCRIPTING_GATE_STATS_LINE,
                        "scripting_gate_%s{%V} %ui\n", f->name,
                        &z[i].label, v);
            }

            if (rc != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_scripting_gate_stats_hists_prometheus(
    ngx_http_scripting_gate_stats_text_t *t, ngx_array_t *zones)
{
    ngx_uint_t                               i;
    ngx_http_scripting_gate_hist_t          *h;
    ngx_http_scripting_gate_zone_stats_t    *z;
    ngx_http_scripting_gate_stats_family_t  *f;

    z = zones->elts;

    for (f = ngx_http_scripting_gate_stats_hist_families; f->name; f++) {

        if (ngx_http_scripting_gate_stats_family(t, f) != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < zones->nelts; i++) {
            h = (ngx_http_scripting_gate_hist_t *)
                    ((u_char *) &z[i] + f->offset);

            if (ngx_http_scripting_gate_stats_hist_prometheus(t, f->name,
                                                              &z[i].label, h)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* a zone's histogram: cumulative buckets, then sum and count */

static ngx_int_t
ngx_http_scripting_gate_stats_hist_prometheus(
    ngx_http_scripting_gate_stats_text_t *t, char *name, ngx_str_t *label,
    ngx_http_scripting_gate_hist_t *h)
{
    u_char      le[NGX_INT_T_LEN + 5], *p;
    ngx_uint_t  b, sum;

    sum = 0;

    for (b = 0; b < NGX_HTTP_SCRIPTING_GATE_BUCKETS; b++) {
        sum += h->count[b];

        if (b == NGX_HTTP_SCRIPTING_GATE_BUCKETS - 1) {
            p = ngx_cpymem(le, "+Inf", 4);

        } else {
            p = ngx_http_scripting_gate_stats_seconds(le,
                                           ngx_http_scripting_gate_buckets[b]);
        }

        if (ngx_http_scripting_gate_stats_text(t,
                label->len + NGX_HTTP_SCRIPTING_GATE_STATS_LINE,
                "scripting_gate_%s_bucket{%V,le=\"%*s\"} %ui\n",
                name, label, (size_t) (p - le), le, sum)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_scripting_gate_stats_text(t,
            label->len + NGX_HTTP_SCRIPTING_GATE_STATS_LINE,
            "scripting_gate_%s_sum{%V} %ui.%03ui\n",
            name, label, (ngx_uint_t) h->sum / 1000,
            (ngx_uint_t) h->sum % 1000)
        != NGX_OK
        || ngx_http_scripting_gate_stats_text(t,
               label->len + NGX_HTTP_SCRIPTING_GATE_STATS_LINE,
               "scripting_gate_%s_count{%V} %ui\n",
               name, label, (ngx_uint_t) h->total)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static json_t *
ngx_http_scripting_gate_stats_jobs_json(ngx_http_request_t *r)
{
    char                                    name[64], *p;
    json_t                                 *jobs, *jz;
    ngx_uint_t                              i, v;
    ngx_http_scripting_gate_jobs_zone_t   **jzp;
    ngx_http_scripting_gate_async_main_conf_t  *amcf;
    ngx_http_scripting_gate_jobs_shctx_t    figures;
    ngx_http_scripting_gate_stats_family_t *f;

    amcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_scripting_gate_async_module);

    jobs = json_object();
    if (jobs == NULL) {
        return NULL;
    }

    jzp = amcf->jobs_zones.elts;

    for (i = 0; i < amcf->jobs_zones.nelts; i++) {
        ngx_http_scripting_gate_jobs_figures(jzp[i], &figures);

        jz = json_object();

        if (jz == NULL
            || json_object_setn_new(jobs,
                                    (char *) jzp[i]->shm_zone->shm.name.data,
                                    jzp[i]->shm_zone->shm.name.len, jz))
        {
            return NULL;
        }

        for (f = ngx_http_scripting_gate_stats_jobs_families; f->name; f++) {
            v = *(ngx_uint_t *) ((u_char *) &figures + f->offset);

            /* "jobs_accepted_total" is "accepted" */
            p = (char *) ngx_cpystrn((u_char *) name, (u_char *) f->name + 5,
                                     sizeof(name));

            if (p - name > 6 && ngx_strcmp(p - 6, "_total") == 0) {
                p[-6] = '\0';
            }

            if (json_object_set_new(jz, name, json_integer(v)) != 0) {
                return NULL;
            }
        }
    }

    return jobs;
}


static ngx_int_t
ngx_http_scripting_gate_stats_jobs_prometheus(ngx_http_request_t *r,
    ngx_http_scripting_gate_stats_text_t *t)
{
    u_char                                 *p;
    ngx_str_t                              *name, label;
    ngx_uint_t                              i, v;
    ngx_http_scripting_gate_jobs_zone_t   **jzp;
    ngx_http_scripting_gate_async_main_conf_t  *amcf;
    ngx_http_scripting_gate_jobs_shctx_t   *figures;
    ngx_http_scripting_gate_stats_family_t *f;

    amcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_scripting_gate_async_module);

    if (amcf->jobs_zones.nelts == 0) {
        return NGX_OK;
    }

    figures = ngx_palloc(r->pool,
                         amcf->jobs_zones.nelts
                         * sizeof(ngx_http_scripting_gate_jobs_shctx_t));
    if (figures == NULL) {
        return NGX_ERROR;
    }

    jzp = amcf->jobs_zones.elts;

    for (i = 0; i < amcf->jobs_zones.nelts; i++) {
        ngx_http_scripting_gate_jobs_figures(jzp[i], &figures[i]);
    }

    for (f = ngx_http_scripting_gate_stats_jobs_families; f->name; f++) {

        if (ngx_http_scripting_gate_stats_family(t, f) != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < amcf->jobs_zones.nelts; i++) {
            name = &jzp[i]->shm_zone->shm.name;
            v = *(ngx_uint_t *) ((u_char *) &figures[i] + f->offset);

            p = ngx_pnalloc(r->pool, sizeof("zone=\"\"") + 2 * name->len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            label.data = p;
            p = ngx_cpymem(p, "zone=\"", 6);
            p = ngx_http_scripting_gate_stats_escape(p, name);
            *p++ = '"';
            label.len = p - label.data;

            if (ngx_http_scripting_gate_stats_text(t,
                    label.len + NGX_HTTP_SCRIPTING_GATE_STATS_LINE,
                    "scripting_gate_%s{%V} %ui\n", f->name, &label, v)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* the label sets, escaped once rather than once per family */

static ngx_int_t
ngx_http_scripting_gate_stats_labels(ngx_pool_t *pool, ngx_array_t *zones)
{
    u_char                                *p;
    ngx_uint_t                             i, j;
    ngx_http_scripting_gate_key_stats_t   *k;
    ngx_http_scripting_gate_zone_stats_t  *z;

    z = zones->elts;

    for (i = 0; i < zones->nelts; i++) {

        p = ngx_pnalloc(pool, sizeof("zone=\"\"") - 1 + 2 * z[i].name.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        z[i].label.data = p;
        p = ngx_cpymem(p, "zone=\"", 6);
        p = ngx_http_scripting_gate_stats_escape(p, &z[i].name);
        *p++ = '"';
        z[i].label.len = p - z[i].label.data;

        k = z[i].keys.elts;

        for (j = 0; j < z[i].keys.nelts; j++) {
            p = ngx_pnalloc(pool, sizeof("{,key=\"\"}") - 1 + z[i].label.len
                                  + 2 * k[j].key.len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            k[j].label.data = p;
            *p++ = '{';
            p = ngx_cpymem(p, z[i].label.data, z[i].label.len);
            p = ngx_cpymem(p, ",key=\"", 6);
            p = ngx_http_scripting_gate_stats_escape(p, &k[j].key);
            *p++ = '"';
            *p++ = '}';
            k[j].label.len = p - k[j].label.data;
        }
    }

    return NGX_OK;
}


/*
 * appends at most "max" bytes to the response; a new pool buffer is started
 * when the current one has less room, so nothing is ever cut
 */

static ngx_int_t
ngx_http_scripting_gate_stats_text(ngx_http_scripting_gate_stats_text_t *t,
    size_t max, const char *fmt, ...)
{
    u_char       *p;
    va_list       args;
    ngx_chain_t  *cl;

    if (t->buf == NULL || (size_t) (t->buf->end - t->buf->last) < max) {
        cl = ngx_alloc_chain_link(t->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = ngx_create_temp_buf(t->pool, ngx_max(max, 16384));
        if (cl->buf == NULL) {
            return NGX_ERROR;
        }

        cl->next = NULL;
        *t->last = cl;
        t->last = &cl->next;
        t->buf = cl->buf;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(t->buf->last, t->buf->last + max, fmt, args);
    va_end(args);

    t->size += p - t->buf->last;
    t->buf->last = p;

    return NGX_OK;
}


/* a Prometheus label value: backslash, double quote and newline escaped */

static u_char *
ngx_http_scripting_gate_stats_escape(u_char *p, ngx_str_t *s)
{
    u_char  *c, *end;

    for (c = s->data, end = s->data + s->len; c < end; c++) {

        switch (*c) {

        case '\\':
            *p++ = '\\';
            *p++ = '\\';
            break;

        case '"':
            *p++ = '\\';
            *p++ = '"';
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = *c;
        }
    }

    return p;
}


/*
 * a bucket bound in seconds, written as Prometheus' clients write it
 * ("0.01", "1", "2.5"): in Prometheus 2 "le" is compared as a string
 */

static u_char *
ngx_http_scripting_gate_stats_seconds(u_char *p, ngx_msec_t ms)
{
    u_char      d[3];
    ngx_uint_t  n;

    p = ngx_sprintf(p, "%M", ms / 1000);

    ms %= 1000;

    if (ms == 0) {
        return p;
    }

    d[0] = (u_char) ('0' + ms / 100);
    d[1] = (u_char) ('0' + ms / 10 % 10);
    d[2] = (u_char) ('0' + ms % 10);

    for (n = 3; d[n - 1] == '0'; n--) { /* void */ }

    *p++ = '.';

    return ngx_cpymem(p, d, n);
}
