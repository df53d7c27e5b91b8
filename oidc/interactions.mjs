// The provider's interaction routes (oidc-provider's `interactions.url`, answered with
// `provider.interactionDetails` and `provider.interactionFinished`): its login page and nothing
// else. The portal's people are never asked for consent (loadExistingGrant in provider.mjs), so a
// login is the only prompt; any other is refused rather than silently granted.
//
//   GET  /interaction/:uid         the login page (the demo people in development)
//   POST /interaction/:uid         log in: the form's `login` is the account (any password)
//   POST /interaction/:uid/abort   the person cancels: the portal gets access_denied
//   GET  /login-assets/:name       the pages' stylesheets
//
// Koa middleware, put in front of the provider's own routes with provider.use().
import fs from 'node:fs';

import { errors } from 'oidc-provider';

import {
  ASSETS_PATH,
  CONTENT_SECURITY_POLICY,
  asset,
  chooseLanguage,
  loginPage,
  messagePage,
  text,
} from './pages.mjs';

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/abort)?$/;
const MAX_BODY = 16 * 1024;

export function interactionUrl(ctx, interaction) {
  return `/interaction/${interaction.uid}`;
}

// The account a login names, as findAccount reads it: trimmed and lower-cased.
export function accountIdFor(login) {
  return String(login || '').trim().toLowerCase();
}

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new errors.InvalidRequest('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * The demo people `manage.py seed_demo` wrote, read at every page so a new seed shows at once.
 * A missing or broken file is no list: the free login field still works.
 */
function readDemoPeople(file, language) {
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (err.code !== 'ENOENT') console.error(`demo people in ${file} unreadable: ${err.message}`);
    return [];
  }
  return (Array.isArray(data?.people) ? data.people : [])
    .filter((person) => typeof person?.email === 'string' && person.email)
    .map((person) => ({
      email: person.email,
      organisation: String(person.organisation || ''),
      roleLabel: String(person.role_label?.[language] || person.role_label?.nb || person.role || ''),
    }));
}

function sendPage(ctx, status, html) {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.body = html;
}

/**
 * @param {object} options
 * @param {boolean} options.development  list the demo people (never in production)
 * @param {string} options.demoPeopleFile  where seed_demo writes them
 * @param {string} options.portalUrl  where "back" leads when a login cannot go on
 */
export function interactionRoutes(provider, { development, demoPeopleFile, portalUrl }) {
  async function render(ctx, interaction, language, { login, error } = {}) {
    const { uid, prompt, params } = interaction;
    const base = `/interaction/${uid}`;
    // prompt=login, or a max_age the session is older than: the person is known but must log in
    // again (the portal asks so before a signature).
    const freshLogin = Boolean(interaction.session?.accountId)
      && prompt.reasons.some((reason) => ['login_prompt', 'max_age'].includes(reason));
    const prefill = login ?? (params.login_hint || (freshLogin ? interaction.session.accountId : ''));
    const html = loginPage({
      language,
      action: base,
      abortAction: `${base}/abort`,
      people: development ? readDemoPeople(demoPeopleFile, language) : [],
      login: prefill,
      error,
      freshLogin,
      switchUrl: (other) => `${base}?ui_locales=${other}`,
    });
    sendPage(ctx, 200, html);
  }

  async function handle(ctx, abort) {
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    const body = ctx.method === 'POST' ? await formBody(ctx.req) : new URLSearchParams();
    // The page's own choice (its language link, the forms' hidden field) before the request's.
    const language = chooseLanguage(
      body.get('ui_locales') || ctx.query.ui_locales || interaction.params.ui_locales,
      ctx.get('Accept-Language'),
    );

    // interactionFinished answers on the raw response (303 to the authorization endpoint's resume
    // route); Koa must not answer again.
    const finish = async (result) => {
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.respond = false;
    };

    if (abort) {
      await finish({ error: 'access_denied', error_description: 'the person cancelled the login' });
      return;
    }
    if (interaction.prompt.name !== 'login') {
      // Only the portal logs people in here and it never needs consent: refuse anything else.
      await finish({
        error: 'access_denied',
        error_description: `the ${interaction.prompt.name} prompt is not offered here`,
      });
      return;
    }
    if (ctx.method === 'GET') {
      await render(ctx, interaction, language);
      return;
    }
    const login = body.get('login') || '';
    const accountId = accountIdFor(login);
    if (!accountId) {
      await render(ctx, interaction, language, { login, error: text(language).loginMissing });
      return;
    }
    // Any password: this provider is for development and tests. The login is the account.
    await finish({ login: { accountId } });
  }

  return async function interactions(ctx, next) {
    if (ctx.path.startsWith(ASSETS_PATH) && ctx.method === 'GET') {
      const content = asset(ctx.path.slice(ASSETS_PATH.length));
      if (!content) {
        ctx.status = 404;
        return;
      }
      ctx.type = 'text/css; charset=utf-8';
      ctx.set('Cache-Control', 'no-cache');
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.body = content;
      return;
    }
    const match = INTERACTION.exec(ctx.path);
    if (!match) {
      await next();
      return;
    }
    const abort = Boolean(match[2]);
    if (!(ctx.method === 'POST' || (ctx.method === 'GET' && !abort))) {
      ctx.status = 405;
      ctx.set('Allow', abort ? 'POST' : 'GET, POST');
      return;
    }
    try {
      await handle(ctx, abort);
    } catch (err) {
      if (!(err instanceof errors.SessionNotFound)) throw err;
      // The interaction's cookie or record is gone: it expired, or the page was opened in
      // another browser. Say so, and lead back to the portal to start again.
      const language = chooseLanguage(ctx.query.ui_locales, ctx.get('Accept-Language'));
      const t = text(language);
      sendPage(ctx, 400, messagePage({
        language, title: t.expiredTitle, message: t.expiredText, backUrl: `${portalUrl}/`,
      }));
    }
  };
}
