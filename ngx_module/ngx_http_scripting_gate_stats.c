
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Stats: the status endpoint.  The figures of every zone are copied under
 * the zone's mutex into the request's pool (nothing else is done while it
 * is held), then rendered as JSON (jansson), as the Prometheus text
 * exposition format, or as a self-contained HTML page that polls the JSON.
 */


#include "ngx_http_scripting_gate_module.h"
#include "ngx_http_scripting_gate_stats_html.h"
#include <jansson.h>


#define NGX_HTTP_SCRIPTING_GATE_STATS_MAX_KEYS  1000


typedef struct {
    ngx_str_t                           key;
    ngx_uint_t                          limit;
    ngx_uint_t                          active;
    ngx_uint_t                          queued;
    ngx_msec_t                          cooldown;
    ngx_http_scripting_gate_counters_t  counters;
} ngx_http_scripting_gate_stats_key_t;


typedef struct {
    ngx_str_t                           name;
    ngx_array_t                         keys;
    ngx_uint_t                          nkeys;
    ngx_uint_t                          active;
    ngx_uint_t                          queued;
    ngx_uint_t                          evicted;
    ngx_uint_t                          no_memory;
    ngx_uint_t                          requests;
    ngx_uint_t                          retrying;
    ngx_uint_t                          exhausted;
    ngx_http_scripting_gate_counters_t  counters;
    ngx_http_scripting_gate_hist_t      wait;
    ngx_http_scripting_gate_hist_t      upstream;
} ngx_http_scripting_gate_stats_zone_t;


typedef struct {
    ngx_http_request_t                 *request;
    ngx_chain_t                        *out;
    ngx_chain_t                       **last;
    ngx_buf_t                          *buf;
    off_t                               size;
} ngx_http_scripting_gate_text_t;


static ngx_int_t ngx_http_scripting_gate_stats_handler(ngx_http_request_t *r);
static ngx_array_t *ngx_http_scripting_gate_stats_snapshot(
    ngx_http_request_t *r, ngx_uint_t max_keys);
static void ngx_http_scripting_gate_stats_reset(ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_stats_json(ngx_http_request_t *r,
    ngx_array_t *zones, ngx_uint_t max_keys, ngx_chain_t *out);
static json_t *ngx_http_scripting_gate_stats_counters(
    ngx_http_scripting_gate_counters_t *c);
static json_t *ngx_http_scripting_gate_stats_hist(
    ngx_http_scripting_gate_hist_t *h);
static ngx_int_t ngx_http_scripting_gate_stats_prometheus(
    ngx_http_request_t *r, ngx_array_t *zones,
    ngx_http_scripting_gate_text_t *t);
static ngx_int_t ngx_http_scripting_gate_text(
    ngx_http_scripting_gate_text_t *t, size_t max, const char *fmt, ...);
static u_char *ngx_http_scripting_gate_label(u_char *p, ngx_str_t *s);


/* the Prometheus families of the counters, in their order in memory */
static ngx_str_t  ngx_http_scripting_gate_counter_names[] = {
    ngx_string("passed"),
    ngx_string("queued"),
    ngx_string("rejected"),
    ngx_string("timed_out"),
    ngx_string("upstream_429"),
    ngx_string("retries")
};


char *
ngx_http_scripting_gate_stats(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_scripting_gate_loc_conf_t *glcf = conf;

    ngx_int_t                  n;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;

    glcf->stats_max_keys = NGX_HTTP_SCRIPTING_GATE_STATS_MAX_KEYS;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "reset=on") == 0) {
            glcf->stats_reset = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "reset=off") == 0) {
            glcf->stats_reset = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_keys=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);

            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_keys \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            glcf->stats_max_keys = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_scripting_gate_stats_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_scripting_gate_stats_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_str_t                            format;
    ngx_uint_t                           html;
    ngx_chain_t                          out;
    ngx_array_t                         *zones;
    ngx_table_elt_t                     *h;
    ngx_http_scripting_gate_text_t       text;
    ngx_http_scripting_gate_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_scripting_gate_module);

    if (r->method == NGX_HTTP_DELETE && glcf->stats_reset) {
        ngx_http_scripting_gate_stats_reset(r);
        return NGX_HTTP_NO_CONTENT;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");

        if (glcf->stats_reset) {
            ngx_str_set(&h->value, "GET, HEAD, DELETE");

        } else {
            ngx_str_set(&h->value, "GET, HEAD");
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    html = 0;

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK) {

        if (format.len == 4 && ngx_strncmp(format.data, "json", 4) == 0) {
            /* void */

        } else if (format.len == 10
                   && ngx_strncmp(format.data, "prometheus", 10) == 0)
        {
            html = 2;

        } else if (format.len == 4 && ngx_strncmp(format.data, "html", 4) == 0)
        {
            html = 1;

        } else {
            return NGX_HTTP_BAD_REQUEST;
        }

    } else if (r->headers_in.accept
               && ngx_strlcasestrn(r->headers_in.accept->value.data,
                                   r->headers_in.accept->value.data
                                   + r->headers_in.accept->value.len,
                                   (u_char *) "text/html", 9 - 1)
                  != NULL)
    {
        html = 1;
    }

    out.next = NULL;

    if (html == 1) {
        out.buf = ngx_calloc_buf(r->pool);
        if (out.buf == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        out.buf->pos = (u_char *) ngx_http_scripting_gate_stats_page;
        out.buf->last = out.buf->pos
                        + sizeof(ngx_http_scripting_gate_stats_page) - 1;
        out.buf->memory = 1;
        out.buf->last_buf = (r == r->main) ? 1 : 0;
        out.buf->last_in_chain = 1;

        ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
        r->headers_out.content_length_n = out.buf->last - out.buf->pos;

    } else {
        zones = ngx_http_scripting_gate_stats_snapshot(r,
                                                       glcf->stats_max_keys);
        if (zones == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (html == 2) {
            ngx_memzero(&text, sizeof(ngx_http_scripting_gate_text_t));
            text.request = r;
            text.last = &text.out;

            if (ngx_http_scripting_gate_stats_prometheus(r, zones, &text)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            out = *text.out;
            text.buf->last_buf = (r == r->main) ? 1 : 0;
            text.buf->last_in_chain = 1;

            ngx_str_set(&r->headers_out.content_type,
                        "text/plain; version=0.0.4; charset=utf-8");
            r->headers_out.content_length_n = text.size;

        } else {
            if (ngx_http_scripting_gate_stats_json(r, zones,
                                                   glcf->stats_max_keys,
                                                   &out)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_str_set(&r->headers_out.content_type, "application/json");
            r->headers_out.content_length_n = out.buf->last - out.buf->pos;
        }
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-cache");

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


static ngx_array_t *
ngx_http_scripting_gate_stats_snapshot(ngx_http_request_t *r,
    ngx_uint_t max_keys)
{
    ngx_msec_t                             now;
    ngx_uint_t                             i;
    ngx_queue_t                           *q;
    ngx_array_t                           *zones;
    ngx_shm_zone_t                       **shm_zone;
    ngx_http_scripting_gate_zone_t        *zone;
    ngx_http_scripting_gate_node_t        *node;
    ngx_http_scripting_gate_shctx_t       *sh;
    ngx_http_scripting_gate_stats_key_t   *k;
    ngx_http_scripting_gate_stats_zone_t  *z;
    ngx_http_scripting_gate_main_conf_t   *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_scripting_gate_module);

    zones = ngx_array_create(r->pool, gmcf->zones.nelts + 1,
                             sizeof(ngx_http_scripting_gate_stats_zone_t));
    if (zones == NULL) {
        return NULL;
    }

    shm_zone = gmcf->zones.elts;
    now = ngx_current_msec;

    for (i = 0; i < gmcf->zones.nelts; i++) {
        zone = shm_zone[i]->data;
        sh = zone->sh;

        z = ngx_array_push(zones);
        if (z == NULL) {
            return NULL;
        }

        ngx_memzero(z, sizeof(ngx_http_scripting_gate_stats_zone_t));
        z->name = shm_zone[i]->shm.name;

        if (ngx_array_init(&z->keys, r->pool, 16,
                           sizeof(ngx_http_scripting_gate_stats_key_t))
            != NGX_OK)
        {
            return NULL;
        }

        ngx_shmtx_lock(&zone->shpool->mutex);

        z->nkeys = sh->keys;
        z->active = sh->active;
        z->evicted = sh->evicted;
        z->no_memory = sh->no_memory;
        z->requests = sh->requests;
        z->retrying = sh->retrying;
        z->exhausted = sh->budget_exhausted;
        z->counters = sh->counters;
        z->wait = sh->wait;
        z->upstream = sh->upstream;

        for (q = ngx_queue_head(&sh->lru);
             q != ngx_queue_sentinel(&sh->lru);
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_http_scripting_gate_node_t, lru);

            z->queued += node->queued;

            if (z->keys.nelts >= max_keys) {
                continue;
            }

            k = ngx_array_push(&z->keys);
            if (k == NULL) {
                break;
            }

            k->key.len = node->len;
            k->key.data = ngx_pnalloc(r->pool, node->len);
            if (k->key.data == NULL) {
                z->keys.nelts--;
                break;
            }

            ngx_memcpy(k->key.data, node->data, node->len);

            k->limit = node->limit;
            k->active = node->active;
            k->queued = node->queued;
            k->counters = node->counters;
            k->cooldown = (node->cooldown_until
                           && (ngx_msec_int_t) (node->cooldown_until - now) > 0)
                          ? node->cooldown_until - now : 0;
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    return zones;
}


static void
ngx_http_scripting_gate_stats_reset(ngx_http_request_t *r)
{
    ngx_uint_t                            i;
    ngx_queue_t                          *q;
    ngx_shm_zone_t                      **shm_zone;
    ngx_http_scripting_gate_zone_t       *zone;
    ngx_http_scripting_gate_node_t       *node;
    ngx_http_scripting_gate_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_scripting_gate_module);
    shm_zone = gmcf->zones.elts;

    for (i = 0; i < gmcf->zones.nelts; i++) {
        zone = shm_zone[i]->data;

        ngx_shmtx_lock(&zone->shpool->mutex);

        ngx_memzero(&zone->sh->counters,
                    sizeof(ngx_http_scripting_gate_counters_t));
        ngx_memzero(&zone->sh->wait, sizeof(ngx_http_scripting_gate_hist_t));
        ngx_memzero(&zone->sh->upstream,
                    sizeof(ngx_http_scripting_gate_hist_t));
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

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "scripting_gate_stats: counters reset");
}


static ngx_int_t
ngx_http_scripting_gate_stats_json(ngx_http_request_t *r, ngx_array_t *zones,
    ngx_uint_t max_keys, ngx_chain_t *out)
{
    char                                  *s;
    json_t                                *root, *jzones, *jz, *jkeys, *jk;
    ngx_buf_t                             *b;
    ngx_uint_t                             i, j;
    ngx_time_t                            *tp;
    ngx_http_scripting_gate_stats_key_t   *k;
    ngx_http_scripting_gate_stats_zone_t  *z;

    ngx_http_scripting_gate_json_use_pool(r->pool);

    s = NULL;
    root = json_object();
    jzones = json_object();

    if (root == NULL || jzones == NULL
        || json_object_set_new(root, "zones", jzones) != 0)
    {
        goto done;
    }

    z = zones->elts;

    for (i = 0; i < zones->nelts; i++) {
        jkeys = json_object();
        k = z[i].keys.elts;

        for (j = 0; jkeys && j < z[i].keys.nelts; j++) {
            jk = ngx_http_scripting_gate_stats_counters(&k[j].counters);

            if (jk == NULL
                || json_object_set_new(jk, "limit", json_integer(k[j].limit))
                || json_object_set_new(jk, "active",
                                       json_integer(k[j].active))
                || json_object_set_new(jk, "queued",
                                       json_integer(k[j].queued))
                || json_object_set_new(jk, "cooldown_ms",
                                       json_integer(k[j].cooldown))
                || json_object_setn_new(jkeys, (char *) k[j].key.data,
                                        k[j].key.len, jk))
            {
                goto done;
            }
        }

        jz = json_pack("{s:o, s:o, s:I, s:b, s:I, s:I, s:{s:I, s:I, s:I},"
                       " s:{s:o, s:o}}",
                       "keys", jkeys,
                       "totals",
                       ngx_http_scripting_gate_stats_counters(&z[i].counters),
                       "keys_count", (json_int_t) z[i].nkeys,
                       "keys_truncated", z[i].nkeys > max_keys,
                       "evicted", (json_int_t) z[i].evicted,
                       "no_memory", (json_int_t) z[i].no_memory,
                       "retry_budget",
                       "requests", (json_int_t) z[i].requests,
                       "retrying", (json_int_t) z[i].retrying,
                       "exhausted", (json_int_t) z[i].exhausted,
                       "histograms",
                       "queue_wait_ms",
                       ngx_http_scripting_gate_stats_hist(&z[i].wait),
                       "upstream_ms",
                       ngx_http_scripting_gate_stats_hist(&z[i].upstream));

        if (jz == NULL) {
            goto done;
        }

        json_object_set_new(json_object_get(jz, "totals"), "active",
                            json_integer(z[i].active));
        json_object_set_new(json_object_get(jz, "totals"), "queued",
                            json_integer(z[i].queued));

        if (json_object_setn_new(jzones, (char *) z[i].name.data,
                                 z[i].name.len, jz))
        {
            goto done;
        }
    }

    tp = ngx_timeofday();

    json_object_set_new(root, "time_ms",
                        json_integer((json_int_t) tp->sec * 1000 + tp->msec));
    json_object_set_new(root, "pid", json_integer((json_int_t) ngx_pid));

    s = json_dumps(root, JSON_COMPACT);

done:

    ngx_http_scripting_gate_json_use_pool(NULL);

    if (s == NULL) {
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

    return NGX_OK;
}


static json_t *
ngx_http_scripting_gate_stats_counters(ngx_http_scripting_gate_counters_t *c)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                     "passed", (json_int_t) c->passed,
                     "queued_total", (json_int_t) c->queued_total,
                     "rejected", (json_int_t) c->rejected,
                     "timed_out", (json_int_t) c->timed_out,
                     "upstream_429", (json_int_t) c->upstream_429,
                     "retries", (json_int_t) c->retries);
}


/* buckets are cumulative, as in Prometheus */

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
    ngx_array_t *zones, ngx_http_scripting_gate_text_t *t)
{
    u_char                                *zl, *kl;
    ngx_uint_t                             i, j, c, b, sum, *cv;
    ngx_http_scripting_gate_hist_t        *h;
    ngx_http_scripting_gate_stats_key_t   *k;
    ngx_http_scripting_gate_stats_zone_t  *z;

    static struct {
        char                              *name;
        char                              *help;
        char                              *type;
    } gauges[] = {
        { "limit", "Requests allowed in flight to the upstream.", "gauge" },
        { "active", "Requests in flight to the upstream.", "gauge" },
        { "waiting", "Requests waiting in the queue.", "gauge" },
        { "cooldown_seconds", "Seconds left of the key's cool-down.",
          "gauge" }
    };

    static char  *counter_help[] = {
        "Requests that got a slot.",
        "Requests that had to queue.",
        "Requests rejected: queue full or key cooling down.",
        "Requests rejected after their queue timeout.",
        "429 answers of the upstream.",
        "Retries sent to the upstream."
    };

    static char  *hists[][2] = {
        { "queue_wait_seconds", "Time spent queued." },
        { "upstream_seconds", "Time a slot was held by an attempt." }
    };

    z = zones->elts;

#define label_max(s)  (sizeof("{zone=\"\",key=\"\"} ") + 2 * (s))

    /* per key gauges and counters, one family after the other */

    for (c = 0; c < 4 + 6; c++) {

        if (c < 4) {
            if (ngx_http_scripting_gate_text(t, 256,
                    "# HELP scripting_gate_%s %s\n# TYPE scripting_gate_%s %s\n",
                    gauges[c].name, gauges[c].help, gauges[c].name,
                    gauges[c].type) != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else if (ngx_http_scripting_gate_text(t, 256,
                       "# HELP scripting_gate_%V_total %s\n"
                       "# TYPE scripting_gate_%V_total counter\n",
                       &ngx_http_scripting_gate_counter_names[c - 4],
                       counter_help[c - 4],
                       &ngx_http_scripting_gate_counter_names[c - 4])
                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (i = 0; i < zones->nelts; i++) {
            k = z[i].keys.elts;

            for (j = 0; j < z[i].keys.nelts; j++) {
                zl = ngx_pnalloc(r->pool, label_max(z[i].name.len
                                                    + k[j].key.len));
                if (zl == NULL) {
                    return NGX_ERROR;
                }

                kl = ngx_cpymem(zl, "{zone=\"", 7);
                kl = ngx_http_scripting_gate_label(kl, &z[i].name);
                kl = ngx_cpymem(kl, "\",key=\"", 7);
                kl = ngx_http_scripting_gate_label(kl, &k[j].key);
                kl = ngx_cpymem(kl, "\"}", 2);

                if (c == 0) {
                    sum = k[j].limit;

                } else if (c == 1) {
                    sum = k[j].active;

                } else if (c == 2) {
                    sum = k[j].queued;

                } else if (c == 3) {
                    sum = 0;

                    if (ngx_http_scripting_gate_text(t, kl - zl + 64,
                            "scripting_gate_cooldown_seconds%*s %ui.%03ui\n",
                            kl - zl, zl, k[j].cooldown / 1000,
                            k[j].cooldown % 1000) != NGX_OK)
                    {
                        return NGX_ERROR;
                    }

                    continue;

                } else {
                    cv = (ngx_uint_t *) &k[j].counters;
                    sum = cv[c - 4];
                }

                if (c < 4) {
                    if (ngx_http_scripting_gate_text(t, kl - zl + 64,
                            "scripting_gate_%s%*s %ui\n", gauges[c].name,
                            kl - zl, zl, sum) != NGX_OK)
                    {
                        return NGX_ERROR;
                    }

                } else if (ngx_http_scripting_gate_text(t, kl - zl + 64,
                               "scripting_gate_%V_total%*s %ui\n",
                               &ngx_http_scripting_gate_counter_names[c - 4],
                               kl - zl, zl, sum)
                           != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }
        }
    }

    /* per zone */

    if (ngx_http_scripting_gate_text(t, 512,
            "# HELP scripting_gate_keys Keys in the zone.\n"
            "# TYPE scripting_gate_keys gauge\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < zones->nelts; i++) {
        if (ngx_http_scripting_gate_text(t, z[i].name.len * 2 + 64,
                "scripting_gate_keys{zone=\"%V\"} %ui\n", &z[i].name,
                z[i].nkeys) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_scripting_gate_text(t, 512,
            "# HELP scripting_gate_evicted_total Idle keys evicted.\n"
            "# TYPE scripting_gate_evicted_total counter\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < zones->nelts; i++) {
        if (ngx_http_scripting_gate_text(t, z[i].name.len * 2 + 64,
                "scripting_gate_evicted_total{zone=\"%V\"} %ui\n",
                &z[i].name, z[i].evicted) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_scripting_gate_text(t, 512,
            "# HELP scripting_gate_retry_budget_exhausted_total Retries "
            "refused by the retry budget.\n"
            "# TYPE scripting_gate_retry_budget_exhausted_total counter\n")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < zones->nelts; i++) {
        if (ngx_http_scripting_gate_text(t, z[i].name.len * 2 + 64,
                "scripting_gate_retry_budget_exhausted_total{zone=\"%V\"} "
                "%ui\n", &z[i].name, z[i].exhausted) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    for (c = 0; c < 2; c++) {
        if (ngx_http_scripting_gate_text(t, 256,
                "# HELP scripting_gate_%s %s\n"
                "# TYPE scripting_gate_%s histogram\n",
                hists[c][0], hists[c][1], hists[c][0]) != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (i = 0; i < zones->nelts; i++) {
            h = (c == 0) ? &z[i].wait : &z[i].upstream;
            sum = 0;

            for (b = 0; b < NGX_HTTP_SCRIPTING_GATE_BUCKETS; b++) {
                sum += h->count[b];

                if (b == NGX_HTTP_SCRIPTING_GATE_BUCKETS - 1) {
                    if (ngx_http_scripting_gate_text(t, z[i].name.len + 128,
                            "scripting_gate_%s_bucket{zone=\"%V\",le=\"+Inf\"}"
                            " %ui\n", hists[c][0], &z[i].name, sum) != NGX_OK)
                    {
                        return NGX_ERROR;
                    }

                    continue;
                }

                if (ngx_http_scripting_gate_text(t, z[i].name.len + 128,
                        "scripting_gate_%s_bucket{zone=\"%V\",le=\"%ui.%03ui\"}"
                        " %ui\n", hists[c][0], &z[i].name,
                        ngx_http_scripting_gate_buckets[b] / 1000,
                        ngx_http_scripting_gate_buckets[b] % 1000, sum)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }

            if (ngx_http_scripting_gate_text(t, z[i].name.len + 128,
                    "scripting_gate_%s_sum{zone=\"%V\"} %ui.%03ui\n"
                    "scripting_gate_%s_count{zone=\"%V\"} %ui\n",
                    hists[c][0], &z[i].name, h->sum / 1000, h->sum % 1000,
                    hists[c][0], &z[i].name, h->total) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

#undef label_max

    return NGX_OK;
}


/* appends to the response, in buffers of the pool, "max" bytes at most */

static ngx_int_t
ngx_http_scripting_gate_text(ngx_http_scripting_gate_text_t *t, size_t max,
    const char *fmt, ...)
{
    u_char       *p;
    size_t        size;
    va_list       args;
    ngx_chain_t  *cl;

    if (t->buf == NULL || (size_t) (t->buf->end - t->buf->last) < max) {
        size = ngx_max(max, 8192);

        cl = ngx_alloc_chain_link(t->request->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = ngx_create_temp_buf(t->request->pool, size);
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
ngx_http_scripting_gate_label(u_char *p, ngx_str_t *s)
{
    u_char  *c, *end;

    for (c = s->data, end = s->data + s->len; c < end; c++) {
        switch (*c) {
        case '\\':
            *p++ = '\\'; *p++ = '\\';
            break;
        case '"':
            *p++ = '\\'; *p++ = '"';
            break;
        case '\n':
            *p++ = '\\'; *p++ = 'n';
            break;
        default:
            *p++ = *c;
        }
    }

    return p;
}
