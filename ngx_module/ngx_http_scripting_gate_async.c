
/*
 * Copyright (C) nginx-scripting-gate authors
 *
 * Async: a request that asks for it (Prefer: respond-async, RFC 7240) is
 * answered 202 at once and run in the background as a job.
 *
 * The submission is taken at the precontent phase, after access checks,
 * with its body read whole.  The job is stored (jobs.c) before anything is
 * promised: a full store is a 503, never a lost job.  The run belongs to
 * the worker that accepted it and lives in a pool of its own: it holds a
 * copy of the method, URI, headers (not those of the connection) and body,
 * and goes through the same gate key, queue and retry policy as a
 * synchronous request of the location, with a gate (the gate API) and
 * retries of its own.  A body that nginx wrote to a temporary file stays
 * there: the run keeps a descriptor of its own of the (unlinked) file and
 * curl reads it on each attempt; a body in memory is copied, and counts
 * against the worker's max_pending_body.  Each attempt is a libcurl
 * transfer on the worker's multi handle, driven by nginx's events
 * (curl.c).  A gate that refuses a job (queue full, queue timeout) only
 * delays it: a job has the patience its client was spared, up to its
 * timeout.  The run's timeout is a timer that is not cancelable, so that a
 * worker shutting down after a reload finishes its jobs first.  Once
 * finished, the job's JSON may be POSTed to a callback URL the client gave,
 * if the configuration allows its prefix, with a few retries of its own.
 */


#include "ngx_http_scripting_gate_async.h"
#include "ngx_http_scripting_gate_callback.h"
#include "ngx_http_scripting_gate_curl.h"


#define NGX_HTTP_SCRIPTING_GATE_CALLBACK_ATTEMPTS  3
#define NGX_HTTP_SCRIPTING_GATE_CALLBACK_TIMEOUT   10000


typedef struct {
    u_char                               *data;
    size_t                                len;
    size_t                                size;
} ngx_http_scripting_gate_bytes_t;


/*
 * What the location's proxy would send and show, obeyed by its jobs:
 * proxy_set_header with the proxy's defaults, proxy_pass_request_headers,
 * and the answer's headers that proxy_hide_header and nginx itself hide,
 * less those of proxy_pass_header.
 */
struct ngx_http_scripting_gate_async_proxy_s {
    ngx_array_t                           headers;  /* ..._async_header_t */
    ngx_array_t                           hide;     /* ngx_str_t */
    ngx_flag_t                            pass_request_headers;
};


/* a header the proxy sets: the client's of that name is never passed */
typedef struct {
    ngx_str_t                             name;
    ngx_http_complex_value_t             *value;    /* NULL: not sent */
} ngx_http_scripting_gate_async_header_t;


/* a location that takes submissions, as the merge saw it */
typedef struct {
    ngx_http_scripting_gate_async_loc_conf_t  *alcf;
    void                                     **loc_conf;
} ngx_http_scripting_gate_async_location_t;


/* a job's run, in the worker that accepted it */
typedef struct {
    ngx_http_scripting_gate_curl_t        curl;     /* the upstream */
    ngx_http_scripting_gate_curl_t        cb;       /* the callback */
    ngx_http_scripting_gate_t             gate;
    ngx_http_scripting_gate_retry_t       rt;
    ngx_queue_t                           queue;
    ngx_pool_t                           *pool;
    ngx_log_t                            *log;
    ngx_http_scripting_gate_jobs_zone_t  *jz;
    ngx_http_scripting_gate_retry_conf_t *rlcf;
    ngx_http_scripting_gate_async_conf_t *acf;
    ngx_http_scripting_gate_async_proxy_t *proxy;
    u_char                   id[NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN];
    ngx_uint_t                            method;
    struct curl_slist                    *headers;
    struct curl_slist                    *cb_headers;
    ngx_str_t                             body;
    ngx_file_t                            body_file;  /* or in a file */
    off_t                                 body_start;
    off_t                                 body_len;
    off_t                                 body_read;  /* this attempt's */
    ngx_str_t                             callback;
    ngx_str_t                             cb_body;
    ngx_http_scripting_gate_bytes_t       resp_headers;
    ngx_http_scripting_gate_bytes_t       resp_body;
    ngx_uint_t                            attempts;
    ngx_uint_t                            cb_attempts;
    ngx_msec_t                            started;
    ngx_event_t                           timeout;  /* not cancelable */
    ngx_event_t                           wait;     /* a gate that refused */
    ngx_event_t                           cb_wait;
    ngx_event_t                           retry;    /* a backoff */
    unsigned                              too_big:1;
    unsigned                              finished:1;
    /* sent by the job: curl adds no default of its own */
    unsigned                              accept:1;
    unsigned                              content_type:1;
} ngx_http_scripting_gate_run_t;


static ngx_int_t ngx_http_scripting_gate_async_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_async_callback_allowed(
    ngx_http_request_t *r, ngx_http_scripting_gate_async_conf_t *acf,
    ngx_str_t *url);
static ngx_http_scripting_gate_run_t *ngx_http_scripting_gate_async_run(
    ngx_http_request_t *r, ngx_http_scripting_gate_async_conf_t *acf,
    ngx_str_t *callback, ngx_int_t *rc);
static ngx_int_t ngx_http_scripting_gate_async_copy_request(
    ngx_http_request_t *r, ngx_http_scripting_gate_run_t *run);
static ngx_int_t ngx_http_scripting_gate_async_client_headers(
    ngx_http_request_t *r, ngx_http_scripting_gate_run_t *run);
static ngx_int_t ngx_http_scripting_gate_async_add_header(
    ngx_http_scripting_gate_run_t *run, ngx_str_t *name, ngx_str_t *value);
static ngx_uint_t ngx_http_scripting_gate_async_claimed(
    ngx_http_scripting_gate_async_proxy_t *ap, u_char *name, size_t len);
static ngx_uint_t ngx_http_scripting_gate_async_listed(ngx_array_t *names,
    u_char *name, size_t len);
static ngx_uint_t ngx_http_scripting_gate_async_forwarded(ngx_str_t *name);
static ngx_int_t ngx_http_scripting_gate_async_copy_body(
    ngx_http_request_t *r, ngx_http_scripting_gate_run_t *run);
static ngx_int_t ngx_http_scripting_gate_async_body_file(
    ngx_http_scripting_gate_run_t *run, ngx_buf_t *b);
static void ngx_http_scripting_gate_async_body_close(void *data);
static size_t ngx_http_scripting_gate_async_read_cb(char *p, size_t size,
    size_t n, void *data);
static int ngx_http_scripting_gate_async_seek_cb(void *data, curl_off_t offset,
    int origin);
static CURLcode ngx_http_scripting_gate_async_quick_exit(CURL *easy);
static ngx_int_t ngx_http_scripting_gate_async_error(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *message, ngx_uint_t retry_after);
static void ngx_http_scripting_gate_async_attempt(
    ngx_http_scripting_gate_run_t *run);
static void ngx_http_scripting_gate_async_granted(
    ngx_http_scripting_gate_t *g, ngx_int_t rc);
static void ngx_http_scripting_gate_async_refused(
    ngx_http_scripting_gate_run_t *run);
static void ngx_http_scripting_gate_async_wait_handler(ngx_event_t *ev);
static void ngx_http_scripting_gate_async_send_attempt(
    ngx_http_scripting_gate_run_t *run);
static void ngx_http_scripting_gate_async_done(
    ngx_http_scripting_gate_curl_t *cu, CURLcode code);
static void ngx_http_scripting_gate_async_retry_handler(ngx_event_t *ev);
static void ngx_http_scripting_gate_async_timeout_handler(ngx_event_t *ev);
static void ngx_http_scripting_gate_async_finish(
    ngx_http_scripting_gate_run_t *run, ngx_uint_t state, ngx_uint_t status,
    ngx_str_t *reason);
static void ngx_http_scripting_gate_async_callback(
    ngx_http_scripting_gate_run_t *run);
static void ngx_http_scripting_gate_async_callback_done(
    ngx_http_scripting_gate_curl_t *cu, CURLcode code);
static void ngx_http_scripting_gate_async_callback_wait(ngx_event_t *ev);
static void ngx_http_scripting_gate_async_destroy(
    ngx_http_scripting_gate_run_t *run);
static size_t ngx_http_scripting_gate_async_header_cb(char *p, size_t size,
    size_t n, void *data);
static ngx_uint_t ngx_http_scripting_gate_async_cookie(u_char *p, size_t len);
static size_t ngx_http_scripting_gate_async_body_cb(char *p, size_t size,
    size_t n, void *data);
static size_t ngx_http_scripting_gate_async_discard_cb(char *p, size_t size,
    size_t n, void *data);
static ngx_int_t ngx_http_scripting_gate_bytes_add(ngx_pool_t *pool,
    ngx_http_scripting_gate_bytes_t *b, u_char *p, size_t len, size_t max);
static ngx_int_t ngx_http_scripting_gate_async_retry_after(
    ngx_http_scripting_gate_run_t *run, ngx_msec_t *ms);
static void ngx_http_scripting_gate_async_shutdown_check(ngx_event_t *ev);
static void ngx_http_scripting_gate_async_abandon(ngx_str_t *reason);
static ngx_uint_t ngx_http_scripting_gate_async_seen(ngx_http_request_t *r,
    ngx_uint_t mark);
static void ngx_http_scripting_gate_async_seen_cleanup(void *data);
static ngx_uint_t ngx_http_scripting_gate_async_defer(ngx_http_request_t *r);
static ngx_int_t ngx_http_scripting_gate_async_rewrite_handler(
    ngx_http_request_t *r);
static void *ngx_http_scripting_gate_async_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_scripting_gate_async_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_scripting_gate_async_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_scripting_gate_async_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_scripting_gate_async_proxy_init(ngx_conf_t *cf);
static ngx_array_t *ngx_http_scripting_gate_async_proxy_list(u_char *conf,
    ngx_uint_t offset);
static ngx_int_t ngx_http_scripting_gate_async_proxy_compile(ngx_conf_t *cf,
    ngx_http_scripting_gate_async_proxy_t *ap, ngx_array_t *set);
static ngx_int_t ngx_http_scripting_gate_async_proxy_hide(
    ngx_http_scripting_gate_async_proxy_t *ap, ngx_str_t *name,
    ngx_array_t *pass);
static void ngx_http_scripting_gate_async_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_scripting_gate_async_commands[] = {

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


static ngx_http_module_t  ngx_http_scripting_gate_async_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_scripting_gate_async_init,    /* postconfiguration */

    ngx_http_scripting_gate_async_create_main_conf, /* create main conf */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_scripting_gate_async_create_loc_conf, /* create location conf */
    ngx_http_scripting_gate_async_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_scripting_gate_async_module = {
    NGX_MODULE_V1,
    &ngx_http_scripting_gate_async_module_ctx, /* module context */
    ngx_http_scripting_gate_async_commands, /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_scripting_gate_jobs_init_process, /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_scripting_gate_async_exit_process, /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_scripting_gate_defer_pt  ngx_http_scripting_gate_next_defer;


static ngx_queue_t  ngx_http_scripting_gate_runs;
static ngx_uint_t   ngx_http_scripting_gate_runs_ready;
static ngx_event_t  ngx_http_scripting_gate_shutdown_event;
/* stands for a connection in the timer's debug lines, with fd -1 */
static ngx_connection_t  ngx_http_scripting_gate_shutdown_conn;
static ngx_msec_t   ngx_http_scripting_gate_exiting_since;


/* not forwarded: they belong to one connection, or to the gateway */
static ngx_str_t  ngx_http_scripting_gate_hop_by_hop_headers[] = {
    ngx_string("Connection"),
    ngx_string("Keep-Alive"),
    ngx_string("Proxy-Connection"),
    ngx_string("Proxy-Authenticate"),
    ngx_string("Proxy-Authorization"),
    ngx_string("TE"),
    ngx_string("Trailer"),
    ngx_string("Transfer-Encoding"),
    ngx_string("Upgrade"),
    ngx_string("Content-Length"),
    ngx_null_string
};


/*
 * The headers nginx's proxy sets by default (ngx_http_proxy_headers[]):
 * the client's are never passed.  The job sends none of them itself: its
 * Host is that of "pass", as $proxy_host is proxy_pass's, and the others
 * are curl's to send or not.
 */
static ngx_str_t  ngx_http_scripting_gate_proxy_headers[] = {
    ngx_string("Host"),
    ngx_string("Connection"),
    ngx_string("Content-Length"),
    ngx_string("Transfer-Encoding"),
    ngx_string("TE"),
    ngx_string("Keep-Alive"),
    ngx_string("Expect"),
    ngx_string("Upgrade"),
    ngx_null_string
};


/* what nginx's proxy hides from a client by default, and so a replay */
static ngx_str_t  ngx_http_scripting_gate_proxy_hide_headers[] = {
    ngx_string("Date"),
    ngx_string("Server"),
    ngx_string("X-Pad"),
    ngx_string("X-Accel-Expires"),
    ngx_string("X-Accel-Redirect"),
    ngx_string("X-Accel-Limit-Rate"),
    ngx_string("X-Accel-Buffering"),
    ngx_string("X-Accel-Charset"),
    ngx_null_string
};


/* scripting_async zone=NAME pass=URL jobs_uri=URI [timeout=T]
 *                 [callback_allow=PREFIX ...] [set_cookie=on|off] | off */

char *
ngx_http_scripting_gate_async(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_scripting_gate_async_loc_conf_t *alcf = conf;

    char                                       *err;
    u_char                                     *p, *last;
    ngx_str_t                                  *value, s;
    ngx_uint_t                                  i;
    ngx_http_scripting_gate_async_conf_t       *acf;
    ngx_http_scripting_gate_callback_prefix_t  *prefix;

    if (alcf->async != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        alcf->async = NULL;
        return NGX_CONF_OK;
    }

    acf = ngx_pcalloc(cf->pool, sizeof(ngx_http_scripting_gate_async_conf_t));
    if (acf == NULL) {
        return NGX_CONF_ERROR;
    }

    acf->timeout = 300000;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            acf->jobs = ngx_http_scripting_gate_jobs_zone(cf, &s);
            if (acf->jobs == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "pass=", 5) == 0) {
            acf->pass.data = value[i].data + 5;
            acf->pass.len = value[i].len - 5;

            /* scheme://host[:port], the request's URI follows it */

            if (ngx_strncmp(acf->pass.data, "http://", 7) == 0) {
                p = acf->pass.data + 7;

            } else if (ngx_strncmp(acf->pass.data, "https://", 8) == 0) {
                p = acf->pass.data + 8;

            } else {
                p = NULL;
            }

            last = acf->pass.data + acf->pass.len;

            if (p == NULL || p == last || ngx_strlchr(p, last, '/') != NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid pass \"%V\", it must be "
                                   "\"http://host[:port]\" or "
                                   "\"https://host[:port]\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "jobs_uri=", 9) == 0) {
            acf->jobs_uri.data = value[i].data + 9;
            acf->jobs_uri.len = value[i].len - 9;

            if (acf->jobs_uri.len == 0
                || acf->jobs_uri.data[acf->jobs_uri.len - 1] != '/')
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid jobs_uri \"%V\", it must end "
                                   "with \"/\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            acf->timeout = ngx_parse_time(&s, 0);

            if (acf->timeout == (ngx_msec_t) NGX_ERROR || acf->timeout == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "set_cookie=on") == 0) {
            acf->set_cookie = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "set_cookie=off") == 0) {
            acf->set_cookie = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "callback_allow=", 15) == 0) {
            s.data = value[i].data + 15;
            s.len = value[i].len - 15;

            if (acf->callback_allow == NULL) {
                acf->callback_allow = ngx_array_create(cf->pool, 2,
                            sizeof(ngx_http_scripting_gate_callback_prefix_t));
                if (acf->callback_allow == NULL) {
                    return NGX_CONF_ERROR;
                }
            }

            prefix = ngx_array_push(acf->callback_allow);
            if (prefix == NULL) {
                return NGX_CONF_ERROR;
            }

            err = ngx_http_scripting_gate_callback_prefix(cf->pool, &s,
                                                          prefix);
            if (err) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid callback_allow \"%V\": %s",
                                   &value[i], err);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (acf->jobs == NULL || acf->pass.len == 0 || acf->jobs_uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\", \"pass\" and "
                           "\"jobs_uri\" parameters", &cmd->name);
        return NGX_CONF_ERROR;
    }

    alcf->async = acf;

    return NGX_CONF_OK;
}


static void *
ngx_http_scripting_gate_async_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_async_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_scripting_gate_async_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->jobs_zones, cf->pool, 1, sizeof(void *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&amcf->locations, cf->pool, 4,
                       sizeof(ngx_http_scripting_gate_async_location_t))
        != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static void *
ngx_http_scripting_gate_async_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_async_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_scripting_gate_async_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->proxy = NULL;
     *     conf->jobs = NULL;
     */

    conf->async = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_scripting_gate_async_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_scripting_gate_async_loc_conf_t *prev = parent;
    ngx_http_scripting_gate_async_loc_conf_t *conf = child;

    ngx_http_conf_ctx_t                        *ctx;
    ngx_http_scripting_gate_async_location_t   *loc;
    ngx_http_scripting_gate_async_main_conf_t  *amcf;

    ngx_conf_merge_ptr_value(conf->async, prev->async, NULL);

    if (conf->async == NULL) {
        return NGX_CONF_OK;
    }

    /*
     * the proxy's settings of the location are read once all are merged
     * (postconfiguration): during a merge, cf->ctx holds the location's
     */

    amcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_scripting_gate_async_module);

    loc = ngx_array_push(&amcf->locations);
    if (loc == NULL) {
        return NGX_CONF_ERROR;
    }

    ctx = cf->ctx;

    loc->alcf = conf;
    loc->loc_conf = ctx->loc_conf;

    return NGX_CONF_OK;
}


/* a location that answers for itself (stats, jobs) takes no submissions */

void
ngx_http_scripting_gate_async_off(ngx_conf_t *cf)
{
    ngx_http_scripting_gate_async_loc_conf_t  *alcf;

    alcf = ngx_http_conf_get_module_loc_conf(cf,
                                         ngx_http_scripting_gate_async_module);

    if (alcf->async == NGX_CONF_UNSET_PTR) {
        alcf->async = NULL;
    }
}


static ngx_int_t
ngx_http_scripting_gate_async_init(ngx_conf_t *cf)
{
    if (ngx_http_scripting_gate_async_proxy_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* registered after the retry's: a submission is taken before a retry */

    if (ngx_http_scripting_gate_add_handlers(cf,
                                ngx_http_scripting_gate_async_rewrite_handler,
                                ngx_http_scripting_gate_async_handler)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_scripting_gate_next_defer = ngx_http_scripting_gate_defer;
    ngx_http_scripting_gate_defer = ngx_http_scripting_gate_async_defer;

    return NGX_OK;
}


/*
 * The proxy's policy of each location that takes submissions, compiled
 * once ngx_http_block() has merged every location (before it calls the
 * postconfiguration handlers): the proxy module's settings are found
 * through its directive table, as retry.c finds them, so that the module
 * neither links against the proxy module (nginx may be built without it)
 * nor assumes its configuration's layout.  Without the proxy module, the
 * proxy's defaults apply.
 */

static ngx_int_t
ngx_http_scripting_gate_async_proxy_init(ngx_conf_t *cf)
{
    u_char                                     *conf;
    ngx_str_t                                  *name;
    ngx_uint_t                                  i, j, set, flag, hide, pass;
    ngx_array_t                                *a, *unhide;
    ngx_module_t                               *m;
    ngx_command_t                              *cmd;
    ngx_http_scripting_gate_async_proxy_t      *ap;
    ngx_http_scripting_gate_async_location_t   *loc;
    ngx_http_scripting_gate_async_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_scripting_gate_async_module);

    if (amcf->locations.nelts == 0) {
        return NGX_OK;
    }

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

    set = NGX_CONF_UNSET_UINT;
    flag = NGX_CONF_UNSET_UINT;
    hide = NGX_CONF_UNSET_UINT;
    pass = NGX_CONF_UNSET_UINT;

    for (cmd = m ? m->commands : NULL; cmd && cmd->name.len; cmd++) {

        if (cmd->conf != NGX_HTTP_LOC_CONF_OFFSET) {
            continue;
        }

        if (cmd->set == ngx_conf_set_keyval_slot
            && ngx_strcmp(cmd->name.data, "proxy_set_header") == 0)
        {
            set = cmd->offset;

        } else if (cmd->set == ngx_conf_set_flag_slot
                   && ngx_strcmp(cmd->name.data, "proxy_pass_request_headers")
                      == 0)
        {
            flag = cmd->offset;

        } else if (cmd->set == ngx_conf_set_str_array_slot
                   && ngx_strcmp(cmd->name.data, "proxy_hide_header") == 0)
        {
            hide = cmd->offset;

        } else if (cmd->set == ngx_conf_set_str_array_slot
                   && ngx_strcmp(cmd->name.data, "proxy_pass_header") == 0)
        {
            pass = cmd->offset;
        }
    }

    loc = amcf->locations.elts;

    for (i = 0; i < amcf->locations.nelts; i++) {

        ap = ngx_pcalloc(cf->pool,
                         sizeof(ngx_http_scripting_gate_async_proxy_t));
        if (ap == NULL) {
            return NGX_ERROR;
        }

        if (ngx_array_init(&ap->headers, cf->pool, 12,
                           sizeof(ngx_http_scripting_gate_async_header_t))
            != NGX_OK
            || ngx_array_init(&ap->hide, cf->pool, 10, sizeof(ngx_str_t))
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        conf = m ? loc[i].loc_conf[m->ctx_index] : NULL;

        ap->pass_request_headers = 1;

        if (conf && flag != NGX_CONF_UNSET_UINT) {
            ap->pass_request_headers = *(ngx_flag_t *) (conf + flag);
        }

        a = ngx_http_scripting_gate_async_proxy_list(conf, set);

        if (ngx_http_scripting_gate_async_proxy_compile(cf, ap, a) != NGX_OK) {
            return NGX_ERROR;
        }

        unhide = ngx_http_scripting_gate_async_proxy_list(conf, pass);

        for (name = ngx_http_scripting_gate_proxy_hide_headers; name->len;
             name++)
        {
            if (ngx_http_scripting_gate_async_proxy_hide(ap, name, unhide)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        a = ngx_http_scripting_gate_async_proxy_list(conf, hide);

        if (a) {
            name = a->elts;

            for (j = 0; j < a->nelts; j++) {
                if (ngx_http_scripting_gate_async_proxy_hide(ap, &name[j],
                                                             unhide)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }
        }

        loc[i].alcf->proxy = ap;
    }

    return NGX_OK;
}


/*
 * A list of the proxy's loc conf, NULL when there is none: one that no
 * level set stays NGX_CONF_UNSET_PTR after the merge (proxy_hide_header,
 * proxy_pass_header), or is NULL (proxy_set_header).
 */

static ngx_array_t *
ngx_http_scripting_gate_async_proxy_list(u_char *conf, ngx_uint_t offset)
{
    ngx_array_t  *a;

    if (conf == NULL || offset == NGX_CONF_UNSET_UINT) {
        return NULL;
    }

    a = *(ngx_array_t **) (conf + offset);

    return (a == NGX_CONF_UNSET_PTR) ? NULL : a;
}


/*
 * The location's proxy_set_header list, in its order, each value a complex
 * value evaluated per submission; then the proxy's defaults it does not
 * override.  A header whose value is empty, or that belongs to the
 * connection, is not sent, and neither is the client's of that name.
 */

static ngx_int_t
ngx_http_scripting_gate_async_proxy_compile(ngx_conf_t *cf,
    ngx_http_scripting_gate_async_proxy_t *ap, ngx_array_t *set)
{
    ngx_str_t                                *name;
    ngx_uint_t                                i;
    ngx_keyval_t                             *kv;
    ngx_http_compile_complex_value_t          ccv;
    ngx_http_scripting_gate_async_header_t   *hd;

    static ngx_str_t  expect = ngx_string("Expect");

    kv = set ? set->elts : NULL;

    for (i = 0; set && i < set->nelts; i++) {

        hd = ngx_array_push(&ap->headers);
        if (hd == NULL) {
            return NGX_ERROR;
        }

        hd->name = kv[i].key;
        hd->value = NULL;

        if (kv[i].value.len == 0
            || ngx_http_scripting_gate_hop_by_hop(&kv[i].key)
            || (kv[i].key.len == expect.len
                && ngx_strncasecmp(kv[i].key.data, expect.data, expect.len)
                   == 0))
        {
            continue;
        }

        hd->value = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (hd->value == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &kv[i].value;
        ccv.complex_value = hd->value;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    for (name = ngx_http_scripting_gate_proxy_headers; name->len; name++) {

        if (ngx_http_scripting_gate_async_claimed(ap, name->data, name->len)) {
            continue;
        }

        hd = ngx_array_push(&ap->headers);
        if (hd == NULL) {
            return NGX_ERROR;
        }

        hd->name = *name;
        hd->value = NULL;
    }

    return NGX_OK;
}


/* a header of the answer not replayed, unless proxy_pass_header names it */

static ngx_int_t
ngx_http_scripting_gate_async_proxy_hide(
    ngx_http_scripting_gate_async_proxy_t *ap, ngx_str_t *name,
    ngx_array_t *pass)
{
    ngx_str_t  *s;

    if (ngx_http_scripting_gate_async_listed(&ap->hide, name->data, name->len)
        || (pass
            && ngx_http_scripting_gate_async_listed(pass, name->data,
                                                    name->len)))
    {
        return NGX_OK;
    }

    s = ngx_array_push(&ap->hide);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = *name;

    return NGX_OK;
}


/* the body of a submission is read early for scripting_json_var */

static ngx_int_t
ngx_http_scripting_gate_async_rewrite_handler(ngx_http_request_t *r)
{
    ngx_http_scripting_gate_async_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_async_module);

    if (alcf->async == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_scripting_gate_read_json_body(r);
}


/* the gate leaves a submission to its job */

static ngx_uint_t
ngx_http_scripting_gate_async_defer(ngx_http_request_t *r)
{
    if (ngx_http_scripting_gate_async_wanted(r)) {
        return 1;
    }

    return ngx_http_scripting_gate_next_defer
           ? ngx_http_scripting_gate_next_defer(r) : 0;
}


/*
 * Whether the request was answered already (mark 0), or marks it so
 * (mark 1; 1 on an error): a pool cleanup survives internal redirects.
 */

static ngx_uint_t
ngx_http_scripting_gate_async_seen(ngx_http_request_t *r, ngx_uint_t mark)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_scripting_gate_async_seen_cleanup) {
            return 1;
        }
    }

    if (!mark) {
        return 0;
    }

    cln = ngx_pool_cleanup_add(r->main->pool, 0);
    if (cln == NULL) {
        return 1;
    }

    cln->handler = ngx_http_scripting_gate_async_seen_cleanup;

    return 0;
}


static void
ngx_http_scripting_gate_async_seen_cleanup(void *data)
{
    /* a mark only */
}


/* Prefer: respond-async, on a location with scripting_async */

ngx_uint_t
ngx_http_scripting_gate_async_wanted(ngx_http_request_t *r)
{
    u_char                              *p, *last;
    ngx_uint_t                           i;
    ngx_list_part_t                     *part;
    ngx_table_elt_t                     *h;
    ngx_http_scripting_gate_async_loc_conf_t  *alcf;

    if (r != r->main) {
        return 0;
    }

    alcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_async_module);

    if (alcf->async == NULL) {
        return 0;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Prefer") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Prefer",
                               sizeof("Prefer") - 1) != 0)
        {
            continue;
        }

        /* a token of a comma-separated list, maybe with parameters */

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {
            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            if ((size_t) (last - p) >= sizeof("respond-async") - 1
                && ngx_strncasecmp(p, (u_char *) "respond-async",
                                   sizeof("respond-async") - 1) == 0
                && ((size_t) (last - p) == sizeof("respond-async") - 1
                    || p[sizeof("respond-async") - 1] == ','
                    || p[sizeof("respond-async") - 1] == ';'
                    || p[sizeof("respond-async") - 1] == ' '
                    || p[sizeof("respond-async") - 1] == '\t'))
            {
                return 1;
            }

            while (p < last && *p != ',') {
                p++;
            }
        }
    }
}


ngx_uint_t
ngx_http_scripting_gate_hop_by_hop(ngx_str_t *name)
{
    ngx_str_t  *h;

    for (h = ngx_http_scripting_gate_hop_by_hop_headers; h->len; h++) {
        if (name->len == h->len
            && ngx_strncasecmp(name->data, h->data, h->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_scripting_gate_async_handler(ngx_http_request_t *r)
{
    u_char                                    *p;
    ngx_int_t                                  rc;
    ngx_str_t                                  callback, body, prefix;
    ngx_str_t                                  reason;
    ngx_table_elt_t                           *h, *pa, *loc;
    ngx_http_scripting_gate_run_t             *run;
    ngx_http_scripting_gate_log_value_t        lv;
    ngx_http_scripting_gate_async_loc_conf_t  *alcf;

    static ngx_str_t  empty = ngx_null_string;
    static ngx_str_t  callback_url = ngx_string("Callback-Url");

    if (!ngx_http_scripting_gate_async_wanted(r)) {
        return NGX_DECLINED;
    }

    alcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_async_module);

    if (ngx_http_scripting_gate_async_seen(r, 0)) {
        /* answered already: an internal redirect brought it back */
        return NGX_DECLINED;
    }

    rc = ngx_http_scripting_gate_read_body(r);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_scripting_gate_async_seen(r, 1)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_http_scripting_gate_header_in(r, &callback_url);
    callback = h ? h->value : empty;

    if (callback.len) {
        if (ngx_http_scripting_gate_async_callback_allowed(r, alcf->async,
                                                           &callback)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, ngx_http_scripting_gate_async_error(r,
                    NGX_HTTP_BAD_REQUEST, "bad.request",
                    "The callback URL is not allowed: it must start with a "
                    "prefix the gateway allows", 0));
            return NGX_DONE;
        }
    }

    run = ngx_http_scripting_gate_async_run(r, alcf->async, &callback, &rc);

    if (run == NULL) {
        switch (rc) {

        case NGX_DECLINED:
            rc = ngx_http_scripting_gate_async_error(r,
                        NGX_HTTP_SERVICE_UNAVAILABLE, "service.unavailable",
                        "The job store is full. Retry the request later", 1);
            break;

        case NGX_BUSY:
            rc = ngx_http_scripting_gate_async_error(r,
                        NGX_HTTP_TOO_MANY_REQUESTS,
                        "too.many.requests.retry.after",
                        "Too many jobs of yours are under way. Retry the "
                        "request later", 1);
            break;

        case NGX_AGAIN:
            rc = ngx_http_scripting_gate_async_error(r,
                        NGX_HTTP_SERVICE_UNAVAILABLE, "service.unavailable",
                        "Too many request bodies are waiting to be sent. "
                        "Retry the request later", 1);
            break;

        default:
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    /*
     * the answer is made whole before the job starts: the first attempt
     * may end the run at once, and a job must not run for a client that
     * got no 202
     */

    prefix = alcf->async->jobs_uri;

    rc = ngx_http_scripting_gate_job_json(r->pool, run->jz, run->id, &prefix,
                                          &body, NULL);

    pa = ngx_list_push(&r->headers_out.headers);
    loc = pa ? ngx_list_push(&r->headers_out.headers) : NULL;
    p = ngx_pnalloc(r->pool, prefix.len + NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN);

    if (rc != NGX_OK || loc == NULL || p == NULL) {
        ngx_str_set(&reason, "the job could not be accepted");
        ngx_http_scripting_gate_async_finish(run,
                                             NGX_HTTP_SCRIPTING_GATE_JOB_FAILED,
                                             0, &reason);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pa->hash = 1;
#if (nginx_version >= 1023000)
    pa->next = NULL;
#endif
    ngx_str_set(&pa->key, "Preference-Applied");
    ngx_str_set(&pa->value, "respond-async");

    loc->hash = 1;
#if (nginx_version >= 1023000)
    loc->next = NULL;
#endif
    ngx_str_set(&loc->key, "Location");
    loc->value.data = p;
    loc->value.len = ngx_cpymem(ngx_cpymem(p, prefix.data, prefix.len),
                                run->id, NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN)
                     - p;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "scripting_async: job %*s accepted, key \"%V\"",
                  (size_t) NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN, run->id,
                  run->gate.nholds
                  ? ngx_http_scripting_gate_log_value(&lv,
                                              run->gate.holds[0].key.data,
                                              run->gate.holds[0].key.len)
                  : &empty);

    /* the run may be gone after this */
    ngx_http_scripting_gate_async_attempt(run);

    rc = ngx_http_scripting_gate_jobs_send(r, NGX_HTTP_ACCEPTED, &body);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * A callback goes only to a prefix the configuration lists: the gateway
 * must not become a relay to any address a client names.  NGX_DECLINED
 * (logged): not allowed.
 */

static ngx_int_t
ngx_http_scripting_gate_async_callback_allowed(ngx_http_request_t *r,
    ngx_http_scripting_gate_async_conf_t *acf, ngx_str_t *url)
{
    char                                 *err;
    ngx_http_scripting_gate_log_value_t   lv;

    err = ngx_http_scripting_gate_callback_check(url, acf->callback_allow);

    if (err == NULL) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "scripting_async: callback URL \"%V\" is not allowed: %s",
                  ngx_http_scripting_gate_log_value(&lv, url->data,
                                                    ngx_min(url->len, 256)),
                  err);

    return NGX_DECLINED;
}


/*
 * The job and its run; NULL when there is none, and *rc says why: the
 * store is full (NGX_DECLINED), the submitter is over its quota
 * (NGX_BUSY), the worker holds too many bodies (NGX_AGAIN), or an error.
 */

static ngx_http_scripting_gate_run_t *
ngx_http_scripting_gate_async_run(ngx_http_request_t *r,
    ngx_http_scripting_gate_async_conf_t *acf, ngx_str_t *callback,
    ngx_int_t *rc)
{
    u_char                                    *p;
    u_char                                     owner[
                                        NGX_HTTP_SCRIPTING_GATE_JOB_OWNER_LEN];
    ngx_str_t                                  key, method, uri;
    ngx_pool_t                                *pool;
    ngx_http_scripting_gate_run_t             *run;
    ngx_http_scripting_gate_async_loc_conf_t  *alcf;

    *rc = NGX_ERROR;

    alcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_async_module);

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    run = ngx_pcalloc(pool, sizeof(ngx_http_scripting_gate_run_t));
    if (run == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    run->pool = pool;
    run->log = ngx_cycle->log;
    run->body_file.fd = NGX_INVALID_FILE;
    run->jz = acf->jobs->data;
    run->rlcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_scripting_gate_retry_module);
    run->acf = acf;
    run->proxy = alcf->proxy;
    run->method = r->method;
    run->started = ngx_current_msec;

    run->gate.log = run->log;
    run->gate.data = run;
    run->rt.log = run->log;
    run->rt.started = run->started;

    /* the keys are evaluated now, and kept in the job's pool */
    *rc = ngx_http_scripting_gate_prepare(r, &run->gate, pool);

    if (*rc == NGX_ERROR) {
        goto failed;
    }

    ngx_str_null(&key);

    if (*rc == NGX_OK) {
        run->rt.gate = &run->gate;
        key = run->gate.holds[0].key;
    }

    *rc = ngx_http_scripting_gate_async_copy_request(r, run);

    if (*rc != NGX_OK) {
        goto failed;
    }

    if (ngx_http_scripting_gate_job_owner(r, run->jz, owner) != NGX_OK) {
        *rc = NGX_ERROR;
        goto failed;
    }

    if (callback->len) {
        run->callback.data = ngx_pstrdup(pool, callback);
        if (run->callback.data == NULL) {
            *rc = NGX_ERROR;
            goto failed;
        }

        run->callback.len = callback->len;
    }

    method = r->method_name;

    /* the query string may hold a token: the job shows the path only */

    uri = r->unparsed_uri;
    p = ngx_strlchr(uri.data, uri.data + uri.len, '?');

    if (p) {
        uri.len = p - uri.data;
    }

    *rc = ngx_http_scripting_gate_job_create(run->jz, &key, &method, &uri,
                                             &run->callback, owner, run->id,
                                             r->connection->log);

    if (*rc != NGX_OK) {
        curl_slist_free_all(run->headers);
        curl_easy_cleanup(run->curl.easy);
        ngx_destroy_pool(pool);
        return NULL;
    }

    /* the body is held until the run ends */
    run->jz->pending_body += run->body.len;

    if (!ngx_http_scripting_gate_runs_ready) {
        ngx_queue_init(&ngx_http_scripting_gate_runs);
        ngx_http_scripting_gate_runs_ready = 1;
    }

    ngx_queue_insert_tail(&ngx_http_scripting_gate_runs, &run->queue);

    if (!ngx_http_scripting_gate_shutdown_event.timer_set) {
        ngx_http_scripting_gate_shutdown_event.handler =
                                  ngx_http_scripting_gate_async_shutdown_check;
        ngx_http_scripting_gate_shutdown_conn.fd = (ngx_socket_t) -1;
        ngx_http_scripting_gate_shutdown_event.data =
                                        &ngx_http_scripting_gate_shutdown_conn;
        ngx_http_scripting_gate_shutdown_event.log = ngx_cycle->log;
        ngx_http_scripting_gate_shutdown_event.cancelable = 1;
        ngx_add_timer(&ngx_http_scripting_gate_shutdown_event, 1000);
    }

    if (run->rlcf->policy) {
        ngx_http_scripting_gate_retry_count(&run->rt);
    }

    run->timeout.handler = ngx_http_scripting_gate_async_timeout_handler;
    run->timeout.data = run;
    run->timeout.log = run->log;
    ngx_add_timer(&run->timeout, acf->timeout);

    run->wait.handler = ngx_http_scripting_gate_async_wait_handler;
    run->wait.data = run;
    run->wait.log = run->log;

    run->retry.handler = ngx_http_scripting_gate_async_retry_handler;
    run->retry.data = run;
    run->retry.log = run->log;

    return run;

failed:

    if (*rc != NGX_AGAIN) {
        *rc = NGX_ERROR;
    }

    if (run->headers) {
        curl_slist_free_all(run->headers);
    }

    if (run->curl.easy) {
        curl_easy_cleanup(run->curl.easy);
    }

    ngx_destroy_pool(pool);

    return NULL;
}


/*
 * The upstream request, as curl will send it on every attempt, with the
 * headers the location's proxy would send: its proxy_set_header ones
 * first, then, with proxy_pass_request_headers, the client's that it does
 * not set, but those of the connection and those of this protocol.
 */

static ngx_int_t
ngx_http_scripting_gate_async_copy_request(ngx_http_request_t *r,
    ngx_http_scripting_gate_run_t *run)
{
    u_char                                  *p, *url;
    CURL                                    *easy;
    ngx_int_t                                rc;
    ngx_str_t                                value;
    ngx_uint_t                               i;
    struct curl_slist                       *list;
    ngx_http_scripting_gate_async_proxy_t   *ap;
    ngx_http_scripting_gate_async_header_t  *hd;

    url = ngx_pnalloc(run->pool, run->acf->pass.len + r->unparsed_uri.len + 1);
    if (url == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(url, run->acf->pass.data, run->acf->pass.len);
    p = ngx_cpymem(p, r->unparsed_uri.data, r->unparsed_uri.len);
    *p = '\0';

    ap = run->proxy;
    hd = ap->headers.elts;

    for (i = 0; i < ap->headers.nelts; i++) {

        if (hd[i].value == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, hd[i].value, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        if (value.len == 0) {
            /* as with proxy_pass: an empty value is not sent */
            continue;
        }

        /* a line of its own, and a C string for curl */

        if (ngx_strlchr(value.data, value.data + value.len, CR)
            || ngx_strlchr(value.data, value.data + value.len, LF)
            || ngx_strlchr(value.data, value.data + value.len, '\0'))
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "scripting_async: the value of \"%V\" has a line "
                          "break or a NUL, it is not sent", &hd[i].name);
            continue;
        }

        if (ngx_http_scripting_gate_async_add_header(run, &hd[i].name, &value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ap->pass_request_headers
        && ngx_http_scripting_gate_async_client_headers(r, run) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* no 100-continue round trip, and none of curl's own defaults */

    list = curl_slist_append(run->headers, "Expect:");
    if (list == NULL) {
        return NGX_ERROR;
    }

    run->headers = list;

    if (!run->content_type) {
        list = curl_slist_append(run->headers, "Content-Type:");
        if (list == NULL) {
            return NGX_ERROR;
        }

        run->headers = list;
    }

    if (!run->accept) {
        list = curl_slist_append(run->headers, "Accept:");
        if (list == NULL) {
            return NGX_ERROR;
        }

        run->headers = list;
    }

    rc = ngx_http_scripting_gate_async_copy_body(r, run);

    if (rc != NGX_OK) {
        return rc;
    }

    easy = curl_easy_init();
    if (easy == NULL) {
        return NGX_ERROR;
    }

    run->curl.easy = easy;
    run->curl.done = ngx_http_scripting_gate_async_done;

    p = ngx_pnalloc(run->pool, r->method_name.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, r->method_name.data, r->method_name.len);
    p[r->method_name.len] = '\0';

    if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https")
           != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_HTTPHEADER, run->headers)
           != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION,
                            ngx_http_scripting_gate_async_header_cb)
           != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_HEADERDATA, run) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                            ngx_http_scripting_gate_async_body_cb)
           != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_WRITEDATA, run) != CURLE_OK
        || ngx_http_scripting_gate_async_quick_exit(easy) != CURLE_OK)
    {
        return NGX_ERROR;
    }

    if (r->method == NGX_HTTP_HEAD) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);

    } else if (run->body_file.fd != NGX_INVALID_FILE) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) run->body_len);
        curl_easy_setopt(easy, CURLOPT_READFUNCTION,
                         ngx_http_scripting_gate_async_read_cb);
        curl_easy_setopt(easy, CURLOPT_READDATA, run);
        curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION,
                         ngx_http_scripting_gate_async_seek_cb);
        curl_easy_setopt(easy, CURLOPT_SEEKDATA, run);

    } else if (run->body.len || r->method != NGX_HTTP_GET) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) run->body.len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS,
                         run->body.len ? (char *) run->body.data : "");
    }

    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, (char *) p);

    return NGX_OK;
}


/*
 * The client's headers that the proxy passes unchanged: not those it sets
 * or removes, nor those of the connection, of this protocol, or that say
 * where the request came from.
 */

static ngx_int_t
ngx_http_scripting_gate_async_client_headers(ngx_http_request_t *r,
    ngx_http_scripting_gate_run_t *run)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_OK;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (ngx_http_scripting_gate_hop_by_hop(&h[i].key)
            || ngx_http_scripting_gate_async_claimed(run->proxy, h[i].key.data,
                                                     h[i].key.len)
            || ngx_http_scripting_gate_async_forwarded(&h[i].key))
        {
            continue;
        }

        if (ngx_http_scripting_gate_async_add_header(run, &h[i].key,
                                                     &h[i].value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }
}


static ngx_int_t
ngx_http_scripting_gate_async_add_header(ngx_http_scripting_gate_run_t *run,
    ngx_str_t *name, ngx_str_t *value)
{
    u_char             *p;
    struct curl_slist  *list;

    p = ngx_pnalloc(run->pool, name->len + 2 + value->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (value->len) {
        ngx_sprintf(p, "%V: %V%Z", name, value);

    } else {
        /* "Name:" would tell curl to remove the header */
        ngx_sprintf(p, "%V;%Z", name);
    }

    list = curl_slist_append(run->headers, (char *) p);
    if (list == NULL) {
        return NGX_ERROR;
    }

    run->headers = list;

    /* curl's defaults for these are not to be sent */

    if (name->len == sizeof("Accept") - 1
        && ngx_strncasecmp(name->data, (u_char *) "Accept",
                           sizeof("Accept") - 1) == 0)
    {
        run->accept = 1;

    } else if (name->len == sizeof("Content-Type") - 1
               && ngx_strncasecmp(name->data, (u_char *) "Content-Type",
                                  sizeof("Content-Type") - 1) == 0)
    {
        run->content_type = 1;
    }

    return NGX_OK;
}


/* one of the proxy's own headers: set, removed or left to the transport */

static ngx_uint_t
ngx_http_scripting_gate_async_claimed(ngx_http_scripting_gate_async_proxy_t *ap,
    u_char *name, size_t len)
{
    ngx_uint_t                               i;
    ngx_http_scripting_gate_async_header_t  *hd;

    hd = ap->headers.elts;

    for (i = 0; i < ap->headers.nelts; i++) {
        if (hd[i].name.len == len
            && ngx_strncasecmp(hd[i].name.data, name, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_scripting_gate_async_listed(ngx_array_t *names, u_char *name,
    size_t len)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = names->elts;

    for (i = 0; i < names->nelts; i++) {
        if (s[i].len == len && ngx_strncasecmp(s[i].data, name, len) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * A header of this protocol (Prefer, Callback-Url), or one that says where
 * the request came from: the client's is never believed, and only the
 * location's proxy_set_header sends one, with the value nginx gives it.
 */

static ngx_uint_t
ngx_http_scripting_gate_async_forwarded(ngx_str_t *name)
{
    ngx_str_t  *s;

    static ngx_str_t  names[] = {
        ngx_string("Prefer"),
        ngx_string("Callback-Url"),
        ngx_string("Forwarded"),
        ngx_string("X-Real-IP"),
        ngx_null_string
    };

    if (name->len >= sizeof("X-Forwarded-") - 1
        && ngx_strncasecmp(name->data, (u_char *) "X-Forwarded-",
                           sizeof("X-Forwarded-") - 1) == 0)
    {
        return 1;
    }

    for (s = names; s->len; s++) {
        if (name->len == s->len
            && ngx_strncasecmp(name->data, s->data, s->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * A transfer ended while curl still resolves its host name must not wait
 * for the resolver's thread: that would block the worker.
 */

static CURLcode
ngx_http_scripting_gate_async_quick_exit(CURL *easy)
{
#if (LIBCURL_VERSION_NUM >= 0x075700)
    return curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#else
    return CURLE_OK;
#endif
}


/*
 * The body, replayed byte for byte on every attempt, from its temporary
 * file when nginx wrote it to one, else from memory; NGX_AGAIN when the
 * worker holds max_pending_body of bodies in memory already.
 */

static ngx_int_t
ngx_http_scripting_gate_async_copy_body(ngx_http_request_t *r,
    ngx_http_scripting_gate_run_t *run)
{
    u_char                               *p;
    off_t                                 len;
    ssize_t                               n;
    ngx_buf_t                            *b;
    ngx_chain_t                          *cl;
    ngx_http_scripting_gate_jobs_zone_t  *jz;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && cl->buf->in_file) {
        return ngx_http_scripting_gate_async_body_file(run, cl->buf);
    }

    jz = run->jz;

    if ((size_t) len > jz->max_pending_body - jz->pending_body) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "scripting_async: with a body of %O bytes, the "
                      "bodies of the jobs pending in this worker would "
                      "exceed max_pending_body (%uz bytes), the request "
                      "is refused", len, jz->max_pending_body);
        return NGX_AGAIN;
    }

    p = ngx_pnalloc(run->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    run->body.data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* the client's body in its temporary file, as proxy reads it */
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    run->body.len = p - run->body.data;

    return NGX_OK;
}


/*
 * The request's temporary file is closed (and unlinked, when nginx had not
 * unlinked it already) with the request: the run reads it through a
 * descriptor of its own, closed with the run's pool.
 */

static ngx_int_t
ngx_http_scripting_gate_async_body_file(ngx_http_scripting_gate_run_t *run,
    ngx_buf_t *b)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(run->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    run->body_file.fd = dup(b->file->fd);

    if (run->body_file.fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, run->log, ngx_errno,
                      "dup() of \"%V\" failed", &b->file->name);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_scripting_gate_async_body_close;
    cln->data = run;

    run->body_file.name = b->file->name;
    run->body_file.log = run->log;
    run->body_start = b->file_pos;
    run->body_len = b->file_last - b->file_pos;

    return NGX_OK;
}


static void
ngx_http_scripting_gate_async_body_close(void *data)
{
    ngx_http_scripting_gate_run_t *run = data;

    if (ngx_close_file(run->body_file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, run->log, ngx_errno,
                      ngx_close_file_n " of a job's body failed");
    }
}


/* a body in a file, as curl sends it: the file is local, as for proxy_pass */

static size_t
ngx_http_scripting_gate_async_read_cb(char *p, size_t size, size_t n,
    void *data)
{
    ngx_http_scripting_gate_run_t *run = data;

    size_t   len;
    ssize_t  rc;

    len = (size_t) ngx_min((off_t) (size * n), run->body_len - run->body_read);

    if (len == 0) {
        return 0;
    }

    rc = ngx_read_file(&run->body_file, (u_char *) p, len,
                       run->body_start + run->body_read);

    if (rc <= 0) {
        return CURL_READFUNC_ABORT;
    }

    run->body_read += rc;

    return rc;
}


/* curl rewinds the body to send it again on a new connection */

static int
ngx_http_scripting_gate_async_seek_cb(void *data, curl_off_t offset,
    int origin)
{
    ngx_http_scripting_gate_run_t *run = data;

    if (origin != SEEK_SET || offset < 0 || offset > run->body_len) {
        return CURL_SEEKFUNC_CANTSEEK;
    }

    run->body_read = offset;

    return CURL_SEEKFUNC_OK;
}


static ngx_int_t
ngx_http_scripting_gate_async_error(ngx_http_request_t *r, ngx_uint_t status,
    char *code, char *message, ngx_uint_t retry_after)
{
    u_char     *p;
    ngx_str_t   body, id, ra;

    if (ngx_http_scripting_gate_request_id(r, &id) != NGX_OK
        || ngx_http_scripting_gate_json_error(r, status, code, message, &id,
                                              &body)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (retry_after) {
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ra.data = p;
        ra.len = ngx_sprintf(p, "%ui", retry_after) - p;

        if (ngx_http_scripting_gate_add_header(r, "Retry-After", &ra)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_scripting_gate_jobs_send(r, status, &body);
}


/* an attempt, through the gate when the location has one */

static void
ngx_http_scripting_gate_async_attempt(ngx_http_scripting_gate_run_t *run)
{
    ngx_int_t  rc;

    if (run->rt.gate == NULL) {
        ngx_http_scripting_gate_async_send_attempt(run);
        return;
    }

    run->gate.retry = (run->rt.retries > 0);
    run->gate.status = NGX_HTTP_SCRIPTING_GATE_NONE;

    rc = ngx_http_scripting_gate_acquire(&run->gate);

    switch (rc) {

    case NGX_OK:
        ngx_http_scripting_gate_async_send_attempt(run);
        return;

    case NGX_AGAIN:
        run->gate.handler = ngx_http_scripting_gate_async_granted;
        return;

    default:
        ngx_http_scripting_gate_async_refused(run);
    }
}


static void
ngx_http_scripting_gate_async_granted(ngx_http_scripting_gate_t *g,
    ngx_int_t rc)
{
    ngx_http_scripting_gate_run_t  *run;

    run = g->data;

    if (rc == NGX_OK) {
        ngx_http_scripting_gate_async_send_attempt(run);
        return;
    }

    ngx_http_scripting_gate_async_refused(run);
}


/* the gate turned the job away for now: it tries again when told to */

static void
ngx_http_scripting_gate_async_refused(ngx_http_scripting_gate_run_t *run)
{
    ngx_msec_t  delay;

    if (run->gate.dry_run) {
        /* as a request in dry run: on, without a slot */
        ngx_http_scripting_gate_async_send_attempt(run);
        return;
    }

    delay = ngx_max(run->gate.retry_after, 100);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, run->log, 0,
                   "scripting_async: job %*s waits for the gate",
                   (size_t) NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN, run->id);

    /* the run's timeout ends the wait if it comes first */
    ngx_add_timer(&run->wait, delay);
}


static void
ngx_http_scripting_gate_async_wait_handler(ngx_event_t *ev)
{
    ngx_http_scripting_gate_async_attempt(ev->data);
}


static void
ngx_http_scripting_gate_async_send_attempt(ngx_http_scripting_gate_run_t *run)
{
    ngx_str_t   reason;
    ngx_msec_t  elapsed;

    run->attempts++;
    run->too_big = 0;
    run->body_read = 0;
    run->resp_headers.len = 0;
    run->resp_body.len = 0;

    if (run->rt.retries && run->rt.gate) {
        ngx_http_scripting_gate_retried(run->rt.gate);
    }

    ngx_http_scripting_gate_job_running(run->jz, run->id, run->attempts, 0);

    /* the attempt ends with the run's timeout at the latest */
    elapsed = ngx_current_msec - run->started;

    curl_easy_setopt(run->curl.easy, CURLOPT_TIMEOUT_MS,
                     (long) (run->acf->timeout > elapsed
                             ? run->acf->timeout - elapsed : 1));

    if (ngx_http_scripting_gate_curl_add(&run->curl, run->log) != NGX_OK) {
        ngx_http_scripting_gate_release(&run->gate);
        ngx_str_set(&reason, "the request could not be started");
        ngx_http_scripting_gate_async_finish(run,
                                             NGX_HTTP_SCRIPTING_GATE_JOB_FAILED,
                                             0, &reason);
    }
}


static void
ngx_http_scripting_gate_async_done(ngx_http_scripting_gate_curl_t *cu,
    CURLcode code)
{
    u_char                         *p;
    long                            status;
    ngx_int_t                       rc;
    ngx_str_t                       reason;
    ngx_msec_t                      ra;
    ngx_uint_t                      state;
    ngx_http_scripting_gate_run_t  *run;

    run = (ngx_http_scripting_gate_run_t *) cu;

    status = 0;

    if (code == CURLE_OK) {
        curl_easy_getinfo(cu->easy, CURLINFO_RESPONSE_CODE, &status);
    }

    if (run->too_big) {
        ngx_http_scripting_gate_release(&run->gate);

        p = ngx_pnalloc(run->pool, NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN);
        if (p == NULL) {
            ngx_str_set(&reason, "the result is larger than max_result");

        } else {
            reason.data = p;
            reason.len = ngx_snprintf(p, NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN,
                                      "the result is larger than max_result "
                                      "(%uz bytes)", run->jz->max_result)
                         - p;
        }

        ngx_http_scripting_gate_async_finish(run,
                                             NGX_HTTP_SCRIPTING_GATE_JOB_FAILED,
                                             0, &reason);
        return;
    }

    ra = 0;
    rc = NGX_DECLINED;

    if (status == 0) {
        /* no answer: what proxy_pass would have answered */
        status = (code == CURLE_OPERATION_TIMEDOUT) ? NGX_HTTP_GATEWAY_TIME_OUT
                                                    : NGX_HTTP_BAD_GATEWAY;

        ngx_log_error(NGX_LOG_WARN, run->log, 0,
                      "scripting_async: job %*s, attempt %ui: %s",
                      (size_t) NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN, run->id,
                      run->attempts, curl_easy_strerror(code));

    } else if (run->rlcf->retry_after) {
        rc = ngx_http_scripting_gate_async_retry_after(run, &ra);
    }

    ngx_http_scripting_gate_retry_answer(&run->gate, run->rlcf, status, rc,
                                         ra);
    ngx_http_scripting_gate_release(&run->gate);

    if (ngx_http_scripting_gate_retry_next(&run->rt, run->rlcf, status,
                                           run->method, rc, ra)
        == NGX_OK)
    {
        run->rt.retries++;

        /* the answer that is retried shows while the job waits */
        ngx_http_scripting_gate_job_running(run->jz, run->id, run->attempts,
                                            (ngx_uint_t) status);

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, run->log, 0,
                       "scripting_async: job %*s, retry in %M ms",
                       (size_t) NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN, run->id,
                       run->rt.delay);

        ngx_add_timer(&run->retry, run->rt.delay);
        return;
    }

    if (code != CURLE_OK) {
        reason.data = (u_char *) curl_easy_strerror(code);
        reason.len = ngx_strlen(reason.data);
        status = 0;
        state = NGX_HTTP_SCRIPTING_GATE_JOB_FAILED;

    } else if (status < 400) {
        ngx_str_null(&reason);
        state = NGX_HTTP_SCRIPTING_GATE_JOB_SUCCEEDED;

    } else {
        p = ngx_pnalloc(run->pool, NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN);
        if (p == NULL) {
            ngx_str_set(&reason, "the upstream answered with an error");

        } else {
            reason.data = p;
            reason.len = ngx_snprintf(p, NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN,
                                      "the upstream answered %l after %ui "
                                      "attempt%s", status, run->attempts,
                                      run->attempts == 1 ? "" : "s")
                         - p;
        }

        state = NGX_HTTP_SCRIPTING_GATE_JOB_FAILED;
    }

    ngx_http_scripting_gate_async_finish(run, state, (ngx_uint_t) status,
                                         &reason);
}


static void
ngx_http_scripting_gate_async_retry_handler(ngx_event_t *ev)
{
    ngx_http_scripting_gate_async_attempt(ev->data);
}


static void
ngx_http_scripting_gate_async_timeout_handler(ngx_event_t *ev)
{
    u_char                         *p;
    ngx_str_t                       reason;
    ngx_http_scripting_gate_run_t  *run;

    run = ev->data;

    if (run->finished) {
        /* the callback took its time: it has failed */
        ngx_http_scripting_gate_curl_remove(&run->cb);
        ngx_http_scripting_gate_job_callback(run->jz, run->id,
                                   NGX_HTTP_SCRIPTING_GATE_CALLBACK_FAILED, 0,
                                   run->cb_attempts);
        ngx_http_scripting_gate_async_destroy(run);
        return;
    }

    ngx_http_scripting_gate_curl_remove(&run->curl);
    ngx_http_scripting_gate_release(&run->gate);

    p = ngx_pnalloc(run->pool, NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN);
    if (p == NULL) {
        ngx_str_set(&reason, "timed out");

    } else {
        reason.data = p;
        reason.len = ngx_snprintf(p, NGX_HTTP_SCRIPTING_GATE_JOB_REASON_LEN,
                                  "timed out after %M ms, %ui attempt%s",
                                  run->acf->timeout, run->attempts,
                                  run->attempts == 1 ? "" : "s")
                     - p;
    }

    ngx_http_scripting_gate_async_finish(run,
                                         NGX_HTTP_SCRIPTING_GATE_JOB_FAILED, 0,
                                         &reason);
}


/* the end of the run: the result is stored, then the callback goes */

static void
ngx_http_scripting_gate_async_finish(ngx_http_scripting_gate_run_t *run,
    ngx_uint_t state, ngx_uint_t status, ngx_str_t *reason)
{
    ngx_str_t  headers, body;

    headers.data = run->resp_headers.data;
    headers.len = run->resp_headers.len;
    body.data = run->resp_body.data;
    body.len = run->resp_body.len;

    ngx_http_scripting_gate_job_finish(run->jz, run->id, state, status, reason,
                                       &headers, &body);

    ngx_log_error(NGX_LOG_INFO, run->log, 0,
                  "scripting_async: job %*s %s, status %ui, %ui attempt%s",
                  (size_t) NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN, run->id,
                  state == NGX_HTTP_SCRIPTING_GATE_JOB_SUCCEEDED
                  ? "succeeded" : "failed",
                  status, run->attempts, run->attempts == 1 ? "" : "s");

    run->finished = 1;

    if (run->wait.timer_set) {
        ngx_del_timer(&run->wait);
    }

    if (run->retry.timer_set) {
        ngx_del_timer(&run->retry);
    }

    ngx_http_scripting_gate_retry_done(&run->rt);

    if (run->callback.len == 0) {
        ngx_http_scripting_gate_async_destroy(run);
        return;
    }

    /* the callback has a time of its own, and holds the worker too */

    if (run->timeout.timer_set) {
        ngx_del_timer(&run->timeout);
    }

    ngx_add_timer(&run->timeout, NGX_HTTP_SCRIPTING_GATE_CALLBACK_ATTEMPTS
                                 * (NGX_HTTP_SCRIPTING_GATE_CALLBACK_TIMEOUT
                                    + 2000));

    ngx_http_scripting_gate_async_callback(run);
}


/* POSTs the job's JSON to the callback URL */

static void
ngx_http_scripting_gate_async_callback(ngx_http_scripting_gate_run_t *run)
{
    u_char             *url;
    CURL               *easy;
    ngx_str_t           body;
    struct curl_slist  *list;

    run->cb_attempts++;

    if (run->cb.easy == NULL) {
        if (ngx_http_scripting_gate_job_json(run->pool, run->jz, run->id,
                                             &run->acf->jobs_uri, &body, NULL)
            != NGX_OK)
        {
            goto failed;
        }

        run->cb_body = body;

        url = ngx_pnalloc(run->pool, run->callback.len + 1);
        if (url == NULL) {
            goto failed;
        }

        ngx_memcpy(url, run->callback.data, run->callback.len);
        url[run->callback.len] = '\0';

        list = curl_slist_append(NULL, "Content-Type: application/json");
        if (list == NULL) {
            goto failed;
        }

        run->cb_headers = list;

        list = curl_slist_append(run->cb_headers, "Expect:");
        if (list == NULL) {
            goto failed;
        }

        run->cb_headers = list;

        easy = curl_easy_init();
        if (easy == NULL) {
            goto failed;
        }

        run->cb.easy = easy;
        run->cb.done = ngx_http_scripting_gate_async_callback_done;

        if (curl_easy_setopt(easy, CURLOPT_URL, (char *) url) != CURLE_OK
            || curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https")
               != CURLE_OK
            || curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
            || curl_easy_setopt(easy, CURLOPT_HTTPHEADER, run->cb_headers)
               != CURLE_OK
            || curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t) run->cb_body.len)
               != CURLE_OK
            || curl_easy_setopt(easy, CURLOPT_POSTFIELDS,
                                (char *) run->cb_body.data)
               != CURLE_OK
            || curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                                (long) NGX_HTTP_SCRIPTING_GATE_CALLBACK_TIMEOUT)
               != CURLE_OK
            || curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                                ngx_http_scripting_gate_async_discard_cb)
               != CURLE_OK
            || curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L) != CURLE_OK
            || ngx_http_scripting_gate_async_quick_exit(easy) != CURLE_OK)
        {
            goto failed;
        }

        run->cb_wait.handler = ngx_http_scripting_gate_async_callback_wait;
        run->cb_wait.data = run;
        run->cb_wait.log = run->log;
    }

    if (ngx_http_scripting_gate_curl_add(&run->cb, run->log) == NGX_OK) {
        return;
    }

failed:

    ngx_http_scripting_gate_job_callback(run->jz, run->id,
                                   NGX_HTTP_SCRIPTING_GATE_CALLBACK_FAILED, 0,
                                   run->cb_attempts);
    ngx_http_scripting_gate_async_destroy(run);
}


static void
ngx_http_scripting_gate_async_callback_done(ngx_http_scripting_gate_curl_t *cu,
    CURLcode code)
{
    long                            status;
    ngx_http_scripting_gate_run_t  *run;

    run = (ngx_http_scripting_gate_run_t *)
              ((u_char *) cu - offsetof(ngx_http_scripting_gate_run_t, cb));

    status = 0;

    if (code == CURLE_OK) {
        curl_easy_getinfo(cu->easy, CURLINFO_RESPONSE_CODE, &status);
    }

    if (status >= 200 && status < 300) {
        ngx_http_scripting_gate_job_callback(run->jz, run->id,
                                   NGX_HTTP_SCRIPTING_GATE_CALLBACK_DELIVERED,
                                   status, run->cb_attempts);
        ngx_http_scripting_gate_async_destroy(run);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, run->log, 0,
                  "scripting_async: callback of job %*s, attempt %ui: %s%l",
                  (size_t) NGX_HTTP_SCRIPTING_GATE_JOB_ID_LEN, run->id,
                  run->cb_attempts,
                  status ? "status " : curl_easy_strerror(code), status);

    if (run->cb_attempts >= NGX_HTTP_SCRIPTING_GATE_CALLBACK_ATTEMPTS) {
        ngx_http_scripting_gate_job_callback(run->jz, run->id,
                                   NGX_HTTP_SCRIPTING_GATE_CALLBACK_FAILED,
                                   status, run->cb_attempts);
        ngx_http_scripting_gate_async_destroy(run);
        return;
    }

    ngx_http_scripting_gate_job_callback(run->jz, run->id,
                                   NGX_HTTP_SCRIPTING_GATE_CALLBACK_PENDING,
                                   status, run->cb_attempts);

    /* 1 s, then 2 s */
    ngx_add_timer(&run->cb_wait, 1000 << (run->cb_attempts - 1));
}


static void
ngx_http_scripting_gate_async_callback_wait(ngx_event_t *ev)
{
    ngx_http_scripting_gate_async_callback(ev->data);
}


static void
ngx_http_scripting_gate_async_destroy(ngx_http_scripting_gate_run_t *run)
{
    ngx_http_scripting_gate_curl_remove(&run->curl);
    ngx_http_scripting_gate_curl_remove(&run->cb);
    ngx_http_scripting_gate_release(&run->gate);
    ngx_http_scripting_gate_retry_done(&run->rt);

    if (run->timeout.timer_set) {
        ngx_del_timer(&run->timeout);
    }

    if (run->wait.timer_set) {
        ngx_del_timer(&run->wait);
    }

    if (run->cb_wait.timer_set) {
        ngx_del_timer(&run->cb_wait);
    }

    if (run->retry.timer_set) {
        ngx_del_timer(&run->retry);
    }

    if (run->curl.easy) {
        curl_easy_cleanup(run->curl.easy);
    }

    if (run->cb.easy) {
        curl_easy_cleanup(run->cb.easy);
    }

    curl_slist_free_all(run->headers);
    curl_slist_free_all(run->cb_headers);

    run->jz->pending_body -= run->body.len;

    ngx_queue_remove(&run->queue);

    ngx_destroy_pool(run->pool);
}


/*
 * A worker shutting down after a reload waits for its runs (their timers
 * are not cancelable), but no longer than worker_shutdown_timeout, when it
 * is set: this check, once a second while there are runs, gives up what
 * is left once that time has passed since it first saw the worker exiting.
 */

static void
ngx_http_scripting_gate_async_shutdown_check(ngx_event_t *ev)
{
    ngx_str_t         reason;
    ngx_core_conf_t  *ccf;

    if (ngx_queue_empty(&ngx_http_scripting_gate_runs)) {
        return;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    if (ngx_exiting && ccf->shutdown_timeout) {

        if (ngx_http_scripting_gate_exiting_since == 0) {
            ngx_http_scripting_gate_exiting_since = ngx_current_msec;
        }

        if (ngx_current_msec - ngx_http_scripting_gate_exiting_since
            >= ccf->shutdown_timeout)
        {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "scripting_async: worker_shutdown_timeout: the "
                          "jobs still running here fail");

            ngx_str_set(&reason, "the worker process running the job shut "
                                 "down (worker_shutdown_timeout)");
            ngx_http_scripting_gate_async_abandon(&reason);
            return;
        }
    }

    ngx_add_timer(ev, 1000);
}


/* what the worker still runs fails, saying so, rather than staying "running" */

static void
ngx_http_scripting_gate_async_abandon(ngx_str_t *reason)
{
    ngx_str_t                       none;
    ngx_queue_t                    *q;
    ngx_http_scripting_gate_run_t  *run;

    ngx_str_null(&none);

    while (!ngx_queue_empty(&ngx_http_scripting_gate_runs)) {
        q = ngx_queue_head(&ngx_http_scripting_gate_runs);
        run = ngx_queue_data(q, ngx_http_scripting_gate_run_t, queue);

        if (!run->finished) {
            ngx_http_scripting_gate_job_finish(run->jz, run->id,
                                            NGX_HTTP_SCRIPTING_GATE_JOB_FAILED,
                                            0, reason, &none, &none);
        }

        if (run->callback.len) {
            ngx_http_scripting_gate_job_callback(run->jz, run->id,
                                   NGX_HTTP_SCRIPTING_GATE_CALLBACK_FAILED, 0,
                                   run->cb_attempts);
        }

        ngx_http_scripting_gate_async_destroy(run);
    }
}


/* the worker exits (nginx stopped, or a worker_shutdown_timeout ran out) */

static void
ngx_http_scripting_gate_async_exit_process(ngx_cycle_t *cycle)
{
    ngx_str_t  reason;

    if (ngx_http_scripting_gate_shutdown_event.timer_set) {
        ngx_del_timer(&ngx_http_scripting_gate_shutdown_event);
    }

    if (ngx_http_scripting_gate_runs_ready) {
        ngx_str_set(&reason, "the worker process running the job exited");
        ngx_http_scripting_gate_async_abandon(&reason);
    }

    ngx_http_scripting_gate_curl_exit_process(cycle);
}


/* the headers of the last answer (a 100 Continue starts them anew) */

static size_t
ngx_http_scripting_gate_async_header_cb(char *p, size_t size, size_t n,
    void *data)
{
    ngx_http_scripting_gate_run_t *run = data;

    u_char  *colon;
    size_t   len;

    len = size * n;

    if (len >= 5 && ngx_strncmp(p, "HTTP/", 5) == 0) {
        run->resp_headers.len = 0;
        return len;
    }

    if (len <= 2) {
        /* the empty line */
        return len;
    }

    if (!run->acf->set_cookie
        && ngx_http_scripting_gate_async_cookie((u_char *) p, len))
    {
        /* a session of the upstream's is no part of a result to share */
        return len;
    }

    /* what the location's proxy would hide is not even stored */

    colon = ngx_strlchr((u_char *) p, (u_char *) p + len, ':');

    if (colon
        && ngx_http_scripting_gate_async_listed(&run->proxy->hide, (u_char *) p,
                                                colon - (u_char *) p))
    {
        return len;
    }

    if (ngx_http_scripting_gate_bytes_add(run->pool, &run->resp_headers,
                                          (u_char *) p, len,
                                          run->jz->max_result
                                          - run->resp_body.len)
        != NGX_OK)
    {
        run->too_big = 1;
        return 0;
    }

    return len;
}


/* a Set-Cookie or Set-Cookie2 header line */

static ngx_uint_t
ngx_http_scripting_gate_async_cookie(u_char *p, size_t len)
{
    if (len < sizeof("Set-Cookie") - 1
        || ngx_strncasecmp(p, (u_char *) "Set-Cookie",
                           sizeof("Set-Cookie") - 1)
           != 0)
    {
        return 0;
    }

    p += sizeof("Set-Cookie") - 1;
    len -= sizeof("Set-Cookie") - 1;

    if (len && *p == '2') {
        p++;
        len--;
    }

    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }

    return len && *p == ':';
}


static size_t
ngx_http_scripting_gate_async_body_cb(char *p, size_t size, size_t n,
    void *data)
{
    ngx_http_scripting_gate_run_t *run = data;

    size_t  len;

    len = size * n;

    if (ngx_http_scripting_gate_bytes_add(run->pool, &run->resp_body,
                                          (u_char *) p, len,
                                          run->jz->max_result
                                          - run->resp_headers.len)
        != NGX_OK)
    {
        /* not cut short: the job fails and says why */
        run->too_big = 1;
        return 0;
    }

    return len;
}


static size_t
ngx_http_scripting_gate_async_discard_cb(char *p, size_t size, size_t n,
    void *data)
{
    return size * n;
}


/* appends, growing twice as needed, never beyond "max" bytes in all */

static ngx_int_t
ngx_http_scripting_gate_bytes_add(ngx_pool_t *pool,
    ngx_http_scripting_gate_bytes_t *b, u_char *p, size_t len, size_t max)
{
    u_char  *data;
    size_t   size;

    if (len > max || b->len > max - len) {
        return NGX_ERROR;
    }

    if (b->len + len > b->size) {
        size = ngx_max(b->size * 2, 4096);

        while (size < b->len + len) {
            size *= 2;
        }

        size = ngx_min(size, max);

        data = ngx_pnalloc(pool, size);
        if (data == NULL) {
            return NGX_ERROR;
        }

        if (b->len) {
            ngx_memcpy(data, b->data, b->len);
        }

        if (b->data) {
            (void) ngx_pfree(pool, b->data);
        }

        b->data = data;
        b->size = size;
    }

    ngx_memcpy(b->data + b->len, p, len);
    b->len += len;

    return NGX_OK;
}


/* Retry-After of the last answer */

static ngx_int_t
ngx_http_scripting_gate_async_retry_after(ngx_http_scripting_gate_run_t *run,
    ngx_msec_t *ms)
{
    u_char                               *p, *last, *eol;
    ngx_str_t                             value;
    ngx_http_scripting_gate_log_value_t   lv;

    p = run->resp_headers.data;
    last = p + run->resp_headers.len;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        if ((size_t) (eol - p) > sizeof("Retry-After:") - 1
            && ngx_strncasecmp(p, (u_char *) "Retry-After:",
                               sizeof("Retry-After:") - 1) == 0)
        {
            value.data = p + sizeof("Retry-After:") - 1;
            value.len = eol - value.data;

            while (value.len && *value.data == ' ') {
                value.data++;
                value.len--;
            }

            while (value.len && (value.data[value.len - 1] == '\r'
                                 || value.data[value.len - 1] == ' '))
            {
                value.len--;
            }

            if (ngx_http_scripting_gate_retry_after_value(&value, ms)
                != NGX_OK)
            {
                ngx_log_error(NGX_LOG_WARN, run->log, 0,
                              "scripting_async: ignoring malformed "
                              "Retry-After \"%V\"",
                              ngx_http_scripting_gate_log_value(&lv,
                                       value.data, ngx_min(value.len, 64)));
                return NGX_ERROR;
            }

            return NGX_OK;
        }

        p = eol + 1;
    }

    return NGX_DECLINED;
}
