// The official MCP TypeScript SDK's client, with its own OAuth support, against a
// running toolgate whose [auth] trusts the test IdP (tests/idp).
//
//   node oauth-client.mjs '{"url": "http://127.0.0.1:PORT/mcp", "client_id": "...",
//     "redirect_uri": "...", "call": {"name": "...", "arguments": {}},
//     "step_up": {"name": "...", "arguments": {}}}'
//
// Nothing here knows where the IdP is: the SDK finds it from toolgate's 401
// (WWW-Authenticate resource_metadata and scope), the protected resource metadata
// and the IdP's own metadata, then runs authorization code + PKCE. The IdP approves
// the login by itself and answers /auth with a 303 to the redirect URI carrying the
// code, so "the browser" is one fetch that does not follow redirects. Prints one
// JSON line: every HTTP request made, the tools listed, both calls' results and how
// many authorizations ran. Exits non-zero on any failure.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const opts = JSON.parse(process.argv[2] ?? '{}');
const deadline = setTimeout(() => {
  console.error('oauth-client: gave up after 60 s');
  process.exit(3);
}, 60_000);

// Every request, as the SDK makes it (discovery, authorization, token, MCP).
const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = typeof input === 'string' ? input : input.url ?? String(input);
  const method = init?.method ?? input?.method ?? 'GET';
  const response = await realFetch(input, init);
  requests.push({ method, url, status: response.status });
  return response;
};

class Provider {
  constructor() {
    this.saved = undefined;
    this.verifier = undefined;
    this.code = undefined;
    this.authorizations = [];
  }
  get redirectUrl() {
    return opts.redirect_uri;
  }
  get clientMetadata() {
    return {
      client_name: 'toolgate SDK OAuth test',
      redirect_uris: [opts.redirect_uri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  // A pre-registered public client.
  clientInformation() {
    return { client_id: opts.client_id };
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  // The user agent: follow the authorization URL once, read the code off the
  // redirect.
  async redirectToAuthorization(url) {
    const asked = Object.fromEntries(url.searchParams);
    const response = await fetch(url, { redirect: 'manual' });
    const location = response.headers.get('location');
    if (!location) {
      throw new Error(`the authorization endpoint answered ${response.status} without a redirect: ${await response.text()}`);
    }
    const back = new URL(location, url);
    const code = back.searchParams.get('code');
    if (!code) throw new Error(`no code in the redirect: ${location}`);
    this.code = code;
    this.authorizations.push({
      scope: asked.scope,
      resource: asked.resource,
      code_challenge_method: asked.code_challenge_method,
    });
  }
}

const provider = new Provider();
const url = new URL(opts.url);

async function connected() {
  for (let attempt = 0; attempt < 2; attempt++) {
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    const client = new Client({ name: 'toolgate-sdk-oauth', version: '1.0.0' });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (e) {
      if (!(e instanceof UnauthorizedError) || attempt > 0) throw e;
      await transport.finishAuth(provider.code);
    }
  }
  throw new Error('unreachable');
}

// A call that may need a new authorization first (step-up on 403 insufficient_scope).
async function call(session, params) {
  try {
    return await session.client.callTool(params);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    await session.transport.finishAuth(provider.code);
    return await session.client.callTool(params);
  }
}

try {
  const session = await connected();
  const tools = (await session.client.listTools()).tools.map((t) => t.name).sort();
  const first = await call(session, opts.call);
  const firstScope = provider.saved?.scope;
  const stepUp = opts.step_up ? await call(session, opts.step_up) : null;
  const toolsAfter = (await session.client.listTools()).tools.map((t) => t.name).sort();
  await session.client.close();
  clearTimeout(deadline);
  process.stdout.write(
    JSON.stringify({
      requests,
      tools,
      tools_after: toolsAfter,
      first,
      first_scope: firstScope,
      step_up: stepUp,
      final_scope: provider.saved?.scope,
      authorizations: provider.authorizations,
    }) + '\n',
  );
} catch (e) {
  clearTimeout(deadline);
  console.error(`oauth-client: ${e?.stack ?? e}`);
  console.error(JSON.stringify({ requests }));
  process.exit(1);
}
