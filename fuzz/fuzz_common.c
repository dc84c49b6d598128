
/*
 * Copyright (C) nginx-scripting-gate authors
 */


#include "fuzz_common.h"


ngx_log_t  fuzz_log;

/* nginx's core module, then the four modules of the .so, in its order */
ngx_module_t  *fuzz_modules[] = {
    &ngx_http_core_module,
    &ngx_http_scripting_gate_module,
    &ngx_http_scripting_gate_retry_module,
    &ngx_http_scripting_gate_async_module,
    &ngx_http_scripting_gate_status_module,
    NULL
};

static ngx_open_file_t  fuzz_log_file;
static ngx_cycle_t      fuzz_cycle;


/*
 * nginx's process-wide state, as main() leaves it for the modules: error
 * strings, cached time, page size, slab sizes, module indexes.  The log
 * goes to /dev/null (FUZZ_LOG=stderr shows it) at the debug level, so
 * that every message's formatting runs under the sanitizers.
 */

void
fuzz_init(void)
{
    static int  done;

    if (done) {
        return;
    }

    done = 1;

    if (ngx_strerror_init() != NGX_OK) {
        abort();
    }

    ngx_time_init();

    ngx_pid = getpid();
    ngx_pagesize = getpagesize();
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;

    for (ngx_pagesize_shift = 0; (ngx_pagesize >> ngx_pagesize_shift) > 1;
         ngx_pagesize_shift++)
    {
        /* void */
    }

    ngx_slab_sizes_init();

    if (getenv("FUZZ_LOG") && strcmp(getenv("FUZZ_LOG"), "stderr") == 0) {
        fuzz_log_file.fd = ngx_stderr;

    } else {
        /* not "nginx: [emerg] ..." on stderr for every rejected directive */
        ngx_use_stderr = 0;

        fuzz_log_file.fd = open("/dev/null", O_WRONLY);
        if (fuzz_log_file.fd == -1) {
            abort();
        }
    }

    ngx_str_set(&fuzz_log_file.name, "fuzz.log");

    fuzz_log.file = &fuzz_log_file;
    fuzz_log.log_level = NGX_LOG_DEBUG;

    if (ngx_preinit_modules() != NGX_OK) {
        abort();
    }

    fuzz_cycle.log = &fuzz_log;
    fuzz_cycle.pool = ngx_create_pool(NGX_CYCLE_POOL_SIZE, &fuzz_log);
    if (fuzz_cycle.pool == NULL) {
        abort();
    }

    fuzz_cycle.modules = ngx_modules;

    while (ngx_modules[fuzz_cycle.modules_n]) {
        fuzz_cycle.modules_n++;
    }

    ngx_http_max_module = ngx_count_modules(&fuzz_cycle, NGX_HTTP_MODULE);

    ngx_cycle = &fuzz_cycle;

    if (ngx_crc32_table_init() != NGX_OK) {
        abort();
    }
}


/*
 * The http{} level of a configuration, as ngx_http_block() starts it, for
 * the core module and the modules of the .so: their main, server and
 * location confs, the core variables and the modules' own (their
 * preconfiguration), and the phases' handler arrays that a
 * postconfiguration fills.
 */

ngx_int_t
fuzz_conf_init(fuzz_conf_t *fc)
{
    ngx_uint_t                  i, mi;
    ngx_module_t               *m;
    ngx_conf_t                 *cf;
    ngx_http_module_t          *module;
    ngx_http_conf_ctx_t        *ctx;
    ngx_http_core_main_conf_t  *cmcf;

    ngx_memzero(fc, sizeof(fuzz_conf_t));

    fc->pool = ngx_create_pool(NGX_CYCLE_POOL_SIZE, &fuzz_log);
    if (fc->pool == NULL) {
        return NGX_ERROR;
    }

    fc->cycle = ngx_pcalloc(fc->pool, sizeof(ngx_cycle_t));
    cf = ngx_pcalloc(fc->pool, sizeof(ngx_conf_t));
    ctx = ngx_pcalloc(fc->pool, sizeof(ngx_http_conf_ctx_t));

    if (fc->cycle == NULL || cf == NULL || ctx == NULL) {
        return NGX_ERROR;
    }

    fc->cycle->pool = fc->pool;
    fc->cycle->log = &fuzz_log;
    fc->cycle->modules = ngx_modules;
    fc->cycle->modules_n = fuzz_cycle.modules_n;

    if (ngx_list_init(&fc->cycle->shared_memory, fc->pool, 1,
                      sizeof(ngx_shm_zone_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&fc->conf_file.file.name, "fuzz.conf");
    fc->conf_file.line = 1;

    cf->name = "fuzz";
    cf->cycle = fc->cycle;
    cf->pool = fc->pool;
    cf->temp_pool = fc->pool;
    cf->log = &fuzz_log;
    cf->conf_file = &fc->conf_file;
    cf->module_type = NGX_HTTP_MODULE;
    cf->cmd_type = NGX_HTTP_MAIN_CONF;
    cf->ctx = ctx;

    cf->args = ngx_array_create(fc->pool, 8, sizeof(ngx_str_t));
    if (cf->args == NULL) {
        return NGX_ERROR;
    }

    ctx->main_conf = ngx_pcalloc(fc->pool,
                                 sizeof(void *) * ngx_http_max_module);
    ctx->srv_conf = ngx_pcalloc(fc->pool, sizeof(void *) * ngx_http_max_module);
    ctx->loc_conf = ngx_pcalloc(fc->pool, sizeof(void *) * ngx_http_max_module);

    if (ctx->main_conf == NULL || ctx->srv_conf == NULL
        || ctx->loc_conf == NULL)
    {
        return NGX_ERROR;
    }

    for (i = 0; fuzz_modules[i]; i++) {
        m = fuzz_modules[i];
        mi = m->ctx_index;
        module = m->ctx;

        if (module->create_main_conf) {
            ctx->main_conf[mi] = module->create_main_conf(cf);
            if (ctx->main_conf[mi] == NULL) {
                return NGX_ERROR;
            }
        }

        if (module->create_srv_conf) {
            ctx->srv_conf[mi] = module->create_srv_conf(cf);
            if (ctx->srv_conf[mi] == NULL) {
                return NGX_ERROR;
            }
        }

        if (module->create_loc_conf) {
            ctx->loc_conf[mi] = module->create_loc_conf(cf);
            if (ctx->loc_conf[mi] == NULL) {
                return NGX_ERROR;
            }
        }
    }

    if (ngx_http_variables_add_core_vars(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 1; fuzz_modules[i]; i++) {
        module = fuzz_modules[i]->ctx;

        if (module->preconfiguration
            && module->preconfiguration(cf) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    cmcf = ctx->main_conf[ngx_http_core_module.ctx_index];

    for (i = 0; i <= NGX_HTTP_LOG_PHASE; i++) {
        if (ngx_array_init(&cmcf->phases[i].handlers, fc->pool, 1,
                           sizeof(ngx_http_handler_pt))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    fc->cf = cf;
    fc->ctx = ctx;

    return NGX_OK;
}


/* the location confs of a nested location{}, for every module */

void *
fuzz_conf_loc(fuzz_conf_t *fc)
{
    void               **loc_conf;
    ngx_uint_t           i, mi;
    ngx_http_module_t   *module;

    loc_conf = ngx_pcalloc(fc->pool, sizeof(void *) * ngx_http_max_module);
    if (loc_conf == NULL) {
        return NULL;
    }

    for (i = 0; fuzz_modules[i]; i++) {
        module = fuzz_modules[i]->ctx;
        mi = fuzz_modules[i]->ctx_index;

        if (module->create_loc_conf) {
            loc_conf[mi] = module->create_loc_conf(fc->cf);
            if (loc_conf[mi] == NULL) {
                return NULL;
            }
        }
    }

    return loc_conf;
}


/*
 * One directive of the .so's modules, as ngx_conf_handler() would hand it
 * over: words[0] is its name; a directive that is unknown, not allowed in
 * this context or given a wrong number of arguments is turned away here,
 * as nginx does before any handler runs.  NULL: not handled at all.
 */

char *
fuzz_conf_directive(fuzz_conf_t *fc, ngx_uint_t cmd_type, void **loc_conf,
    ngx_str_t *words, ngx_uint_t n)
{
    void           *conf, **confs;
    ngx_str_t      *arg;
    ngx_uint_t      i, m, args, ok;
    ngx_command_t  *cmd;

    cmd = NULL;

    for (m = 1; fuzz_modules[m]; m++) {

        for (cmd = fuzz_modules[m]->commands; cmd->name.len; cmd++) {
            if (cmd->name.len == words[0].len
                && ngx_strncmp(cmd->name.data, words[0].data, words[0].len)
                   == 0)
            {
                break;
            }
        }

        if (cmd->name.len) {
            break;
        }
    }

    if (fuzz_modules[m] == NULL || !(cmd->type & cmd_type)) {
        return NULL;
    }

    args = n - 1;

    if (cmd->type & NGX_CONF_ANY) {
        ok = 1;

    } else if (cmd->type & NGX_CONF_FLAG) {
        ok = (args == 1);

    } else if (cmd->type & NGX_CONF_1MORE) {
        ok = (args >= 1);

    } else if (cmd->type & NGX_CONF_2MORE) {
        ok = (args >= 2);

    } else {
        ok = (args == 0 && (cmd->type & NGX_CONF_NOARGS))
             || (args == 1 && (cmd->type & NGX_CONF_TAKE1))
             || (args == 2 && (cmd->type & NGX_CONF_TAKE2))
             || (args == 3 && (cmd->type & NGX_CONF_TAKE3));
    }

    if (!ok || n > NGX_CONF_MAX_ARGS + 1) {
        return NULL;
    }

    fc->cf->args->nelts = 0;

    for (i = 0; i < n; i++) {
        arg = ngx_array_push(fc->cf->args);
        if (arg == NULL) {
            return NGX_CONF_ERROR;
        }

        *arg = words[i];
    }

    if (cmd->conf == NGX_HTTP_LOC_CONF_OFFSET) {
        confs = loc_conf;

    } else if (cmd->conf == NGX_HTTP_SRV_CONF_OFFSET) {
        confs = fc->ctx->srv_conf;

    } else {
        confs = fc->ctx->main_conf;
    }

    conf = confs[fuzz_modules[m]->ctx_index];

    fc->cf->cmd_type = cmd_type;

    /* ngx_http_conf_get_module_loc_conf(cf, ...) sees this location */
    fc->ctx->loc_conf = loc_conf;

    return cmd->set(fc->cf, cmd, conf);
}


void
fuzz_conf_done(fuzz_conf_t *fc)
{
    if (fc->pool) {
        ngx_destroy_pool(fc->pool);
        fc->pool = NULL;
    }
}


/* a main request in a location with the confs of ctx */

ngx_http_request_t *
fuzz_request(ngx_pool_t *pool, ngx_http_conf_ctx_t *ctx)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));

    if (r == NULL || c == NULL) {
        return NULL;
    }

    c->log = &fuzz_log;
    c->pool = pool;

    r->connection = c;
    r->pool = pool;
    r->main = r;
    r->main_conf = ctx->main_conf;
    r->srv_conf = ctx->srv_conf;
    r->loc_conf = ctx->loc_conf;

    r->ctx = ngx_pcalloc(pool, sizeof(void *) * ngx_http_max_module);
    if (r->ctx == NULL) {
        return NULL;
    }

    if (ngx_list_init(&r->headers_out.headers, pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NULL;
    }

    r->headers_in.content_length_n = -1;
    r->headers_out.content_length_n = -1;

    return r;
}
