// The local OpenID provider for development and tests: npm `oidc-provider` (panva), on loopback.
//
// People log in on its own login page (oidc/interactions.mjs, oidc/pages.mjs): any password; the
// login field takes an e-mail address, which becomes the `email` claim with `email_verified: true`.
// In development the page also lists the demo people `manage.py seed_demo` wrote, each a one-click
// choice. Test-only: the login `unverified:<e-mail>` gives that `email` with `email_verified:
// false` (see findAccount). Vendors' clients are registered by the portal with Dynamic Client
// Registration (RFC 7591/7592) and get tokens with client_credentials and private_key_jwt.
// GET /registrations lists the registrations the portal made (oidc/registrations.mjs), for the
// reconciler to remove those its database does not know.
//
// Configuration comes from the environment, with development defaults:
//   OIDC_ISSUER                 http://127.0.0.1:9000 (the port to listen on is taken from it)
//   OIDC_VAR_DIR                var/oidc (signing keys; kept so restarts keep them)
//   TILGANG_VAR_DIR             var (secrets shared with Django are under var/secrets/)
//   PORTAL_URL                  http://127.0.0.1:8000 (redirect and post-logout URIs of the portal)
//   OIDC_RP_REDIRECT_URIS       ${PORTAL_URL}/oidc/callback/ (comma-separated)
//   OIDC_RP_POST_LOGOUT_REDIRECT_URIS  ${PORTAL_URL}/ (comma-separated)
//   OIDC_DEMO_PEOPLE_FILE       ${OIDC_VAR_DIR}/demo-people.json (written by manage.py seed_demo)
//   GATEWAY_AUDIENCE            http://127.0.0.1:8080 (audience of tokens for the FHIR gateway)
//   PORTAL_API_AUDIENCE         ${PORTAL_URL}/api/ (audience of automation clients' tokens)
//   OIDC_ACCESS_TOKEN_TTL       600 (seconds; client-credentials tokens)
//   OIDC_SCOPES_FILE            var/oidc/scopes.txt (the catalogue's scopes, one per line)
//   OIDC_RP_CLIENT_SECRET[_FILE], OIDC_INITIAL_ACCESS_TOKEN[_FILE]: as Django reads them.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

import { fileAdapterFor } from './adapter.mjs';
import { accountIdFor, interactionRoutes, interactionUrl } from './interactions.mjs';
import { registrationRoutes } from './registrations.mjs';
import {
  CONTENT_SECURITY_POLICY, chooseLanguage, logoutPage, messagePage, text,
} from './pages.mjs';

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const varDir = path.resolve(process.env.TILGANG_VAR_DIR || path.join(projectDir, 'var'));
const oidcDir = path.resolve(process.env.OIDC_VAR_DIR || path.join(varDir, 'oidc'));
const issuer = (process.env.OIDC_ISSUER || 'http://127.0.0.1:9000').replace(/\/$/, '');
const portalUrl = (process.env.PORTAL_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
const development = !['0', 'false', 'no', 'off'].includes((process.env.DJANGO_DEBUG || '1').toLowerCase());
const demoPeopleFile = path.resolve(process.env.OIDC_DEMO_PEOPLE_FILE || path.join(oidcDir, 'demo-people.json'));
const list = (value) => value.split(',').map((item) => item.trim()).filter(Boolean);

// Read a secret the way portal/settings.py does: NAME, NAME_FILE, or (development only) a value
// generated once into var/secrets/ with O_EXCL, so Django and this process agree on it.
function secret(name) {
  if (process.env[`${name}_FILE`]) return fs.readFileSync(process.env[`${name}_FILE`], 'utf8').trim();
  if (process.env[name]) return process.env[name];
  if (!development) throw new Error(`${name} (or ${name}_FILE) must be set when DJANGO_DEBUG is off`);
  const file = path.join(varDir, 'secrets', name.toLowerCase());
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, randomBytes(48).toString('base64url'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  }
  return fs.readFileSync(file, 'utf8').trim();
}

// Signing keys live in a file so that a restart keeps them: tokens already issued stay valid and
// the gateway's copy of the public keys stays right.
async function signingKeys() {
  const file = path.join(oidcDir, 'jwks.json');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(oidcDir, { recursive: true, mode: 0o700 });
    const keys = [];
    for (const [alg, kid] of [['RS256', 'rs256-1'], ['ES256', 'es256-1']]) {
      const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
      keys.push({ ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' });
    }
    try {
      fs.writeFileSync(file, JSON.stringify({ keys }, null, 2), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
  }
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

const portalClientId = process.env.OIDC_RP_CLIENT_ID || 'portal';
const gatewayAudience = process.env.GATEWAY_AUDIENCE || 'http://127.0.0.1:8080';
const portalApiAudience = process.env.PORTAL_API_AUDIENCE || `${portalUrl}/api/`;
const PORTAL_API_SCOPE = 'tilgang:api';
const UNVERIFIED_PREFIX = 'unverified:';
const accessTokenTtl = Number(process.env.OIDC_ACCESS_TOKEN_TTL || 600);

// The services' scopes are data in the portal's catalogue: `manage.py write_provider_scopes`
// writes them to this file (make run does, and the tests' fixture), one per line.
const SERVICE_SCOPE = /^nhn:ksp\/[a-z0-9-]+\.(read|write)$/;
function serviceScopes() {
  const file = process.env.OIDC_SCOPES_FILE || path.join(oidcDir, 'scopes.txt');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split(/\s+/).filter((scope) => SERVICE_SCOPE.test(scope));
}

// The portal registers each client with software_id = its own id for the client. Deriving the
// client_id from it makes registration idempotent: a registration repeated after a worker died
// replaces itself instead of leaving a second client behind.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PORTAL_CLIENT_PREFIX = 'tilgang-';
function clientIdFor(ctx) {
  const softwareId = ctx.oidc.body?.software_id;
  return typeof softwareId === 'string' && UUID.test(softwareId)
    ? `${PORTAL_CLIENT_PREFIX}${softwareId}`
    : randomBytes(16).toString('hex');
}

// A registration the portal made: its client_id derived from its software_id as above.
function isPortalClientId(clientId, softwareId) {
  return typeof softwareId === 'string' && UUID.test(softwareId)
    && clientId === `${PORTAL_CLIENT_PREFIX}${softwareId}`;
}

function isPortalApiClient(client) {
  return Boolean(client?.scope?.split(' ').includes(PORTAL_API_SCOPE));
}

const storeDir = path.join(oidcDir, 'store');
const initialAccessToken = secret('OIDC_INITIAL_ACCESS_TOKEN');

const configuration = {
  clients: [
    {
      client_id: portalClientId,
      client_secret: secret('OIDC_RP_CLIENT_SECRET'),
      redirect_uris: list(process.env.OIDC_RP_REDIRECT_URIS || `${portalUrl}/oidc/callback/`),
      post_logout_redirect_uris: list(process.env.OIDC_RP_POST_LOGOUT_REDIRECT_URIS || `${portalUrl}/`),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: await signingKeys(),
  cookies: { keys: [secret('OIDC_COOKIE_KEY')] },
  adapter: fileAdapterFor(storeDir),
  scopes: ['openid', 'email', 'profile', PORTAL_API_SCOPE, ...serviceScopes()],
  extraClientMetadata: { properties: ['software_id'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  async findAccount(ctx, id) {
    // Development accounts: whatever was typed into the login field is the person, with a
    // verified e-mail address. For tests, a login `unverified:<e-mail>` is a different account
    // (its own `sub`) with that address, not verified (`email_verified: false`).
    const login = accountIdFor(id);
    const unverified = login.startsWith(UNVERIFIED_PREFIX);
    const email = unverified ? login.slice(UNVERIFIED_PREFIX.length) : login;
    return {
      accountId: login,
      async claims() {
        return {
          sub: login,
          email: email.includes('@') ? email : undefined,
          email_verified: email.includes('@') && !unverified,
          name: email,
        };
      },
    };
  },
  // The portal is a first-party client: its people are not asked for consent.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (ctx.oidc.client.clientId !== portalClientId) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    grant.addOIDCClaims(['email', 'email_verified', 'name']);
    await grant.save();
    return grant;
  },
  // The login page is ours (oidc/interactions.mjs), at oidc-provider's default place.
  interactions: { url: interactionUrl },
  // The provider's other pages in the same look and languages, with no inline style or script.
  async renderError(ctx, out, error) {
    const language = chooseLanguage(ctx.oidc?.params?.ui_locales, ctx.get('Accept-Language'));
    const t = text(language);
    ctx.type = 'html';
    ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    ctx.body = messagePage({
      language,
      title: t.errorTitle,
      message: t.errorText,
      detail: [out.error, out.error_description].filter(Boolean).join(': '),
      backUrl: `${portalUrl}/`,
    });
  },
  clientAuthMethods: ['client_secret_basic', 'private_key_jwt'],
  enabledJWA: {
    // HAProxy 2.6 verifies RS* and ES* but not PS*: offer only what the gateway can check.
    clientAuthSigningAlgValues: ['RS256', 'RS384', 'ES256', 'ES384'],
    idTokenSigningAlgValues: ['RS256', 'ES256'],
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        const language = chooseLanguage(ctx.oidc?.params?.ui_locales, ctx.get('Accept-Language'));
        ctx.type = 'html';
        ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
        ctx.body = logoutPage({ language, form });
      },
      async postLogoutSuccessSource(ctx) {
        const language = chooseLanguage(ctx.oidc?.params?.ui_locales, ctx.get('Accept-Language'));
        const t = text(language);
        ctx.type = 'html';
        ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
        ctx.body = messagePage({
          language, title: t.loggedOutTitle, message: t.loggedOutText, backUrl: `${portalUrl}/`,
        });
      },
    },
    registration: {
      enabled: true,
      initialAccessToken,
      idFactory: clientIdFor,
    },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Client-credentials tokens are for the gateway without a `resource` parameter (or for the
      // portal's API, for automation clients); the portal's own login keeps ordinary access
      // tokens so that userinfo works.
      defaultResource(ctx, client) {
        if (client?.clientId === portalClientId) return undefined;
        return isPortalApiClient(client) ? portalApiAudience : gatewayAudience;
      },
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, resourceIndicator, client) {
        const scopes = (client?.scope || '').split(' ').filter(Boolean);
        if (resourceIndicator === portalApiAudience && isPortalApiClient(client)) {
          return { scope: PORTAL_API_SCOPE, audience: portalApiAudience, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        }
        if (resourceIndicator === gatewayAudience && !isPortalApiClient(client)) {
          return {
            scope: scopes.filter((scope) => SERVICE_SCOPE.test(scope)).join(' '),
            audience: gatewayAudience,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        }
        throw new errors.InvalidTarget();
      },
    },
  },
  // A client-credentials request without `scope` gets the client's registered scopes for the
  // gateway, the pre-defined default of RFC 6749 section 3.3: oidc-provider would otherwise issue
  // a token without a scope claim, which the gateway refuses (it requires the route's scope).
  formats: {
    customizers: {
      jwt(ctx, token, { payload }) {
        if (!payload.scope && token.kind === 'ClientCredentials' && token.resourceServer?.audience === gatewayAudience) {
          payload.scope = token.resourceServer.scope || undefined;
        }
      },
    },
  },
  pkce: { required: () => true },
  ttl: {
    AccessToken: 600,
    ClientCredentials: accessTokenTtl,
    IdToken: 3600,
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error', err));
provider.use(interactionRoutes(provider, { development, demoPeopleFile, portalUrl }));
provider.use(registrationRoutes({ storeDir, initialAccessToken, isPortalClientId }));

const { hostname, port } = new URL(issuer);
const server = provider.listen(Number(port) || 80, hostname);
server.on('listening', () => console.log(`oidc-provider listening on ${issuer}`));

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
