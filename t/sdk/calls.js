// Genesys' own JavaScript SDK (purecloud-platform-client-v2, pinned in
// package.json, installed by "npm ci" in this folder) as a client of the
// gateway, in the SDK's intermediate gateway mode.  Used by t/071-sdk.t
// and for the headline of bench/RESULTS.md.
//
//   node t/sdk/calls.js --gateway http://127.0.0.1:8080
//       [--api-path platform] [--login-path login]
//       [--client-id ID --client-secret SECRET]
//       [--calls N] [--script ID] [--version V] [--async]
//
// --gateway: setGateway({protocol, host, port, path_params_api,
// path_params_login}); without path params, the SDK's requests go to
// /api/v2/... and /oauth/token of that host, which is how it talks
// straight to the mock.  With a client id, the SDK logs in with the client
// credentials grant (through the gateway); otherwise a token is set.
// --calls: N getScriptsPublishedScriptId() calls at once, on one script
// version.  --async: one postScriptExport() with "Prefer: respond-async",
// then the job and its result through the SDK's ApiClient.
//
// Prints one JSON object on stdout:
//   {"login": {...}, "calls": {...}, "async": {...}}

'use strict';

const platformClient = require('purecloud-platform-client-v2');

function options(argv) {
    const o = { apiPath: '', loginPath: '', calls: 0, script: 'sdk',
                version: '1', async: false };
    const names = { '--gateway': 'gateway', '--api-path': 'apiPath',
                    '--login-path': 'loginPath', '--client-id': 'clientId',
                    '--client-secret': 'clientSecret', '--calls': 'calls',
                    '--script': 'script', '--version': 'version' };

    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--async') {
            o.async = true;
        } else if (names[argv[i]] && i + 1 < argv.length) {
            o[names[argv[i]]] = argv[++i];
        } else {
            throw new Error(`unknown argument "${argv[i]}"`);
        }
    }
    if (!o.gateway) {
        throw new Error('--gateway is needed');
    }
    o.calls = parseInt(o.calls, 10) || 0;
    return o;
}

// what a rejection says: the API's error body (the SDK rejects with it),
// or the transport's error
function failure(e) {
    if (e && typeof e === 'object' && typeof e.status === 'number') {
        return { status: e.status, code: e.code, contextId: e.contextId,
                 message: e.message };
    }
    return { status: 0, error: String(e && e.message ? e.message : e) };
}

async function login(client, o) {
    if (!o.clientId) {
        client.setAccessToken('sdk-test-token');
        return null;
    }
    try {
        const auth = await client.loginClientCredentialsGrant(o.clientId,
                                                              o.clientSecret);
        return { ok: true,
                 token: auth.accessToken ? 'set' : 'none',
                 expires_in: Math.round((auth.tokenExpiryTime - Date.now())
                                        / 1000 / 60) * 60 };
    } catch (e) {
        return { ok: false,
                 status: e.response ? e.response.status : 0,
                 error: e.response ? e.response.data : String(e.message) };
    }
}

// N calls at once on one script version: how many resolved with the Script
// the upstream sent, how many rejected, and with what
async function calls(o) {
    const api = new platformClient.ScriptsApi();
    const want = JSON.stringify({ id: o.script, name: `Script ${o.script}`,
                                  versionId: o.version });
    const t0 = Date.now();

    const all = await Promise.all(Array.from({ length: o.calls }, () =>
        api.getScriptsPublishedScriptId(o.script,
                                        { scriptDataVersion: o.version })
            .then((script) => ({ script }), (e) => ({ error: failure(e) }))));

    const out = { n: o.calls, ms: Date.now() - t0, resolved: 0, scripts: 0,
                  rejected: 0, statuses: {}, first_script: null,
                  first_error: null };

    for (const r of all) {
        if (r.script !== undefined) {
            out.resolved++;
            if (JSON.stringify(r.script) === want) {
                out.scripts++;
            }
            out.first_script = out.first_script || r.script;
        } else {
            out.rejected++;
            out.statuses[r.error.status] = (out.statuses[r.error.status] || 0)
                                           + 1;
            out.first_error = out.first_error || r.error;
        }
    }
    return out;
}

// GET a path of the gateway through the SDK's own ApiClient (so under the
// gateway's API path, with the SDK's token)
function get(client, path) {
    return client.callApi(path, 'GET', {}, {}, {}, {}, null,
                          ['PureCloud OAuth'], ['application/json'],
                          ['application/json']);
}

// an export as an async job: 202 and the job, then its state until it has
// ended, then its result
async function job(client, o) {
    const api = new platformClient.ScriptsApi();
    const out = {};

    try {
        const j = await api.postScriptExport(o.script, {
            body: { fileName: `${o.script}.json`, versionId: o.version },
            customHeaders: { 'Prefer': 'respond-async' },
        });
        out.accepted = { state: j.state, location: j.location ? 'set' : 'none' };

        let st = j;
        for (let i = 0; i < 500 && !/^(succeeded|failed|expired)$/.test(st.state);
             i++)
        {
            await new Promise((resolve) => setTimeout(resolve, 10));
            st = await get(client, j.location);
        }
        out.state = st.state;
        out.attempts = st.attempts;
        out.result = await get(client, st.result);
    } catch (e) {
        out.error = failure(e);
    }
    return out;
}

async function main() {
    const o = options(process.argv.slice(2));
    const u = new URL(o.gateway);
    const client = platformClient.ApiClient.instance;

    client.setGateway({
        protocol: u.protocol.replace(/:$/, ''),
        host: u.hostname,
        port: u.port ? parseInt(u.port, 10) : -1,
        path_params_api: o.apiPath,
        path_params_login: o.loginPath,
    });

    const out = { login: await login(client, o) };

    if (o.calls > 0) {
        out.calls = await calls(o);
    }
    if (o.async) {
        out.async = await job(client, o);
    }

    process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
}

main().catch((e) => {
    process.stderr.write(`calls.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});
