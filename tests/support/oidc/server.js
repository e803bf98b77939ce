// A real OAuth 2.0 / OpenID authorization server (npm oidc-provider) on 127.0.0.1 for the end-to-end
// account-link test. Listens on a free port and prints one JSON line {"issuer": ...} when ready; exits
// when its stdin closes, so a crashed test run leaves no server behind.
import http from 'node:http';

import Provider from 'oidc-provider';

const secret = process.env.OIDC_CLIENT_SECRET;
if (!secret) {
  process.stderr.write('OIDC_CLIENT_SECRET is required\n');
  process.exit(2);
}
const redirectUri = process.env.OIDC_REDIRECT_URI || 'https://api.smartthings.com/oauth/callback';
const client = (id, method) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: [redirectUri],
  response_types: ['code'],
  grant_types: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_method: method,
});

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [client('smartapp-basic', 'client_secret_basic'), client('smartapp-post', 'client_secret_post')],
    // Login and consent pages the test drives with plain HTTP requests.
    features: { devInteractions: { enabled: true }, revocation: { enabled: true }, introspection: { enabled: true } },
    scopes: ['openid', 'offline_access', 'read'],
    // Refresh tokens need offline_access, which oidc-provider only honours with prompt=consent.
    issueRefreshToken: async (ctx, c, code) => c.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    rotateRefreshToken: true, // every refresh returns a new refresh token and retires the old one
    pkce: { required: () => true },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    cookies: { keys: ['smartapp-test-cookie-key'] },
    ttl: { AccessToken: 3600, AuthorizationCode: 600, RefreshToken: 30 * 24 * 3600, Grant: 30 * 24 * 3600,
      Interaction: 600, Session: 3600 },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
