// The portal's registrations, listed (not part of RFC 7591/7592, which name no listing): what
// the portal's reconciler needs to find registrations the database does not know, for example
// after a restore of an older backup. Read only, and only those the portal made: a client_id
// `tilgang-<software_id>` (provider.mjs derives it so for a UUID software_id). Authorized by
// the initial access token, which already lets its holder register those clients.
//
//   GET /registrations   {"registrations": [{"client_id", "software_id"}]}
//
// Koa middleware, put in front of the provider's own routes with provider.use().
import { timingSafeEqual } from 'node:crypto';

import { storedPayloads } from './adapter.mjs';

export const REGISTRATIONS_PATH = '/registrations';

function sameSecret(given, expected) {
  const a = Buffer.from(String(given));
  const b = Buffer.from(String(expected));
  return a.length === b.length && timingSafeEqual(a, b);
}

export function registrationRoutes({ storeDir, initialAccessToken, isPortalClientId }) {
  return async function registrations(ctx, next) {
    if (ctx.path !== REGISTRATIONS_PATH) {
      await next();
      return;
    }
    ctx.set('Cache-Control', 'no-store');
    if (ctx.method !== 'GET') {
      ctx.status = 405;
      ctx.set('Allow', 'GET');
      return;
    }
    const [scheme, token] = (ctx.get('Authorization') || '').split(' ');
    if (scheme !== 'Bearer' || !token || !sameSecret(token, initialAccessToken)) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      ctx.body = { error: 'invalid_token' };
      return;
    }
    const found = storedPayloads(storeDir, 'Client')
      .filter((client) => isPortalClientId(client.client_id, client.software_id))
      .map((client) => ({ client_id: client.client_id, software_id: client.software_id }));
    ctx.body = { registrations: found };
  };
}
