// The local provider's pages: log in, log out, and its error page, in bokmål (the default) and
// English. Server-rendered HTML with Designsystemet's classes, the same look as the portal's pages,
// and no inline script or style: the stylesheets are files served under /login-assets/, so the
// pages hold to the strict Content-Security-Policy they are sent with.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const oidcDir = path.dirname(fileURLToPath(import.meta.url));
const projectDir = path.resolve(oidcDir, '..');

export const ASSETS_PATH = '/login-assets/';
// The stylesheets the pages link, by the name they are served under. Designsystemet's CSS and its
// Digdir theme come from npm (package-lock.json pins them), as the portal's copies in static/ do.
const ASSETS = {
  'designsystemet-theme.css': path.join(projectDir, 'node_modules/@digdir/designsystemet-theme/brand/digdir.css'),
  'designsystemet.css': path.join(projectDir, 'node_modules/@digdir/designsystemet-css/dist/src/index.css'),
  'login.css': path.join(oidcDir, 'login.css'),
};

// No script at all; styles and images (Designsystemet's icons are data: URLs) from here only.
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const LANGUAGES = ['nb', 'en'];
const LANGUAGE_NAMES = { nb: 'Norsk bokmål', en: 'English' };

const TEXT = {
  nb: {
    site: 'Tilgang',
    provider: 'Lokal innloggingstjeneste',
    loginTitle: 'Logg inn',
    loginHeading: 'Logg inn på Tilgang',
    intro: 'Dette er den lokale innloggingstjenesten for utvikling og test. Passord sjekkes ikke: '
      + 'du logger inn som den e-postadressen du velger eller skriver inn.',
    freshLogin: 'Logg inn på nytt for å bekrefte at det er deg før du går videre.',
    demoHeading: 'Demopersoner',
    demoHelp: 'Velg en person for å logge inn med ett klikk. Personene og rollene deres finnes i demodataene.',
    emailHeading: 'Logg inn med e-postadresse',
    emailLabel: 'E-postadresse',
    emailHelp: 'Hvilken som helst adresse, for eksempel en du har invitert.',
    passwordLabel: 'Passord',
    passwordHelp: 'Valgfritt: alle passord godtas her.',
    submit: 'Logg inn',
    cancel: 'Avbryt innloggingen',
    errorSummary: 'Rett opp dette før du går videre:',
    loginMissing: 'Skriv inn e-postadressen du vil logge inn som.',
    languageLabel: 'Språk',
    expiredTitle: 'Innloggingen er utløpt',
    expiredText: 'Innloggingen tok for lang tid, eller den ble startet i et annet vindu. '
      + 'Gå tilbake til Tilgang og logg inn på nytt.',
    back: 'Tilbake til Tilgang',
    logoutTitle: 'Logg ut',
    logoutHeading: 'Vil du logge ut av innloggingstjenesten også?',
    logoutText: 'Logger du ut her også, må du logge inn på nytt neste gang du bruker Tilgang.',
    logoutYes: 'Ja, logg ut',
    logoutNo: 'Nei, fortsett å være innlogget her',
    loggedOutTitle: 'Du er logget ut',
    loggedOutText: 'Du er logget ut av innloggingstjenesten.',
    errorTitle: 'Noe gikk galt',
    errorText: 'Innloggingstjenesten kunne ikke fullføre forespørselen.',
  },
  en: {
    site: 'Tilgang',
    provider: 'Local login service',
    loginTitle: 'Log in',
    loginHeading: 'Log in to Tilgang',
    intro: 'This is the local login service for development and testing. Passwords are not checked: '
      + 'you log in as the e-mail address you choose or type.',
    freshLogin: 'Log in again to confirm it is you before you continue.',
    demoHeading: 'Demo people',
    demoHelp: 'Choose a person to log in with one click. The people and their roles are in the demo data.',
    emailHeading: 'Log in with an e-mail address',
    emailLabel: 'E-mail address',
    emailHelp: 'Any address, for example one you have invited.',
    passwordLabel: 'Password',
    passwordHelp: 'Optional: any password is accepted here.',
    submit: 'Log in',
    cancel: 'Cancel the login',
    errorSummary: 'Correct this before you continue:',
    loginMissing: 'Enter the e-mail address you want to log in as.',
    languageLabel: 'Language',
    expiredTitle: 'The login has expired',
    expiredText: 'The login took too long, or it was started in another window. '
      + 'Go back to Tilgang and log in again.',
    back: 'Back to Tilgang',
    logoutTitle: 'Log out',
    logoutHeading: 'Do you want to log out of the login service too?',
    logoutText: 'If you log out here too, you will have to log in again next time you use Tilgang.',
    logoutYes: 'Yes, log out',
    logoutNo: 'No, stay logged in here',
    loggedOutTitle: 'You are logged out',
    loggedOutText: 'You are logged out of the login service.',
    errorTitle: 'Something went wrong',
    errorText: 'The login service could not complete the request.',
  },
};

export function text(language) {
  return TEXT[language] || TEXT.nb;
}

// Everything rendered goes through this: text and attribute values alike.
export function escape(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

// A language tag as we serve it: bokmål for nb, no and nn (the portal has no nynorsk), English for
// any en-*; anything else is not ours.
function supported(tag) {
  const primary = String(tag).trim().toLowerCase().split(/[-_]/)[0];
  if (['nb', 'no', 'nn'].includes(primary)) return 'nb';
  if (primary === 'en') return 'en';
  return undefined;
}

/**
 * The page's language: the request's `ui_locales` (OpenID Connect; space-separated, in order of
 * preference), then the browser's Accept-Language (by quality), then bokmål.
 */
export function chooseLanguage(uiLocales, acceptLanguage) {
  for (const tag of String(uiLocales || '').split(/\s+/).filter(Boolean)) {
    const language = supported(tag);
    if (language) return language;
  }
  const ranked = String(acceptLanguage || '')
    .split(',')
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { tag, q: q ? Number(q.slice(2)) || 0 : 1, index };
    })
    .filter(({ tag, q }) => tag && q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { tag } of ranked) {
    const language = supported(tag);
    if (language) return language;
  }
  return 'nb';
}

// An address may break after its @ and before its dots, not inside a word, on a narrow screen.
function breakable(address) {
  return escape(address).replace(/(@)|(\.)/g, (match, at) => (at ? '@<wbr>' : '<wbr>.'));
}

export function asset(name) {
  const file = ASSETS[name];
  if (!file || !fs.existsSync(file)) return undefined;
  return fs.readFileSync(file);
}

function layout({ language, title, body, switchUrl }) {
  const t = text(language);
  const other = language === 'nb' ? 'en' : 'nb';
  const languageSwitch = switchUrl
    ? `<p class="op-language"><span class="ds-sr-only">${escape(t.languageLabel)}: </span>`
      + `<a class="ds-link" href="${escape(switchUrl(other))}" hreflang="${other}" lang="${other}">`
      + `${escape(LANGUAGE_NAMES[other])}</a></p>`
    : '';
  return `<!DOCTYPE html>
<html lang="${escape(language)}" data-color-scheme="light">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escape(title)} · Tilgang</title>
  <link rel="stylesheet" href="${ASSETS_PATH}designsystemet-theme.css">
  <link rel="stylesheet" href="${ASSETS_PATH}designsystemet.css">
  <link rel="stylesheet" href="${ASSETS_PATH}login.css">
</head>
<body>
  <header class="op-header">
    <p class="op-brand"><span class="op-brand__name">${escape(t.site)}</span> <span class="op-brand__provider">${escape(t.provider)}</span></p>
    ${languageSwitch}
  </header>
  <main id="main" class="op-main">
${body}
  </main>
</body>
</html>
`;
}

function hidden(name, value) {
  return `<input type="hidden" name="${escape(name)}" value="${escape(value)}">`;
}

/**
 * The login page. `people` are the demo people (empty outside development): each a one-click
 * choice. `error` is the free field's message after an empty submission; `login` what was typed.
 */
export function loginPage({
  language, action, abortAction, people, login = '', error, freshLogin, switchUrl,
}) {
  const t = text(language);
  const described = ['login-description', error ? 'login-error' : ''].filter(Boolean).join(' ');
  const summary = error
    ? `    <div class="ds-error-summary" tabindex="-1" autofocus aria-labelledby="error-summary-heading">
      <h2 class="ds-heading" id="error-summary-heading" data-size="xs">${escape(t.errorSummary)}</h2>
      <ul class="ds-list"><li><a class="ds-link" href="#login">${escape(error)}</a></li></ul>
    </div>\n`
    : '';
  const fresh = freshLogin
    ? `    <div class="ds-alert" data-color="info"><p class="ds-paragraph">${escape(t.freshLogin)}</p></div>\n`
    : '';
  const demo = people.length
    ? `    <section class="op-section" aria-labelledby="demo-heading">
      <h2 class="ds-heading" id="demo-heading" data-size="sm">${escape(t.demoHeading)}</h2>
      <p class="ds-paragraph">${escape(t.demoHelp)}</p>
      <form method="post" action="${escape(action)}">
        ${hidden('prompt', 'login')}${hidden('ui_locales', language)}
        <ul class="op-people">
${people.map((person) => `          <li><button type="submit" class="ds-button op-person" data-variant="secondary" name="login" value="${escape(person.email)}">
            <span class="op-person__email">${breakable(person.email)}</span>
            <span class="op-person__organisation">${escape(person.organisation)}</span>
            <span class="op-person__role">${escape(person.roleLabel)}</span>
          </button></li>`).join('\n')}
        </ul>
      </form>
    </section>\n`
    : '';
  const body = `    <h1 class="ds-heading" data-size="lg">${escape(t.loginHeading)}</h1>
${summary}    <p class="ds-paragraph">${escape(t.intro)}</p>
${fresh}${demo}    <section class="op-section" aria-labelledby="email-heading">
      <h2 class="ds-heading" id="email-heading" data-size="sm">${escape(t.emailHeading)}</h2>
      <form method="post" action="${escape(action)}" novalidate>
        ${hidden('prompt', 'login')}${hidden('ui_locales', language)}
        <div class="ds-field">
          <label class="ds-label" for="login">${escape(t.emailLabel)}</label>
          <p class="ds-paragraph" data-field="description" id="login-description">${escape(t.emailHelp)}</p>
${error ? `          <p class="ds-validation-message" data-field="validation" id="login-error">${escape(error)}</p>\n` : ''}          <input class="ds-input" id="login" name="login" type="text" inputmode="email" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escape(login)}" aria-describedby="${described}"${error ? ' aria-invalid="true"' : ''}>
        </div>
        <div class="ds-field">
          <label class="ds-label" for="password">${escape(t.passwordLabel)}</label>
          <p class="ds-paragraph" data-field="description" id="password-description">${escape(t.passwordHelp)}</p>
          <input class="ds-input" id="password" name="password" type="password" autocomplete="current-password" aria-describedby="password-description">
        </div>
        <button type="submit" class="ds-button" data-variant="primary">${escape(t.submit)}</button>
      </form>
    </section>
    <form method="post" action="${escape(abortAction)}" class="op-cancel">
      <button type="submit" class="ds-button" data-variant="tertiary">${escape(t.cancel)}</button>
    </form>`;
  return layout({ language, title: t.loginTitle, body, switchUrl });
}

/** A page that says what went wrong and leads back to the portal. */
export function messagePage({ language, title, message, backUrl, detail }) {
  const t = text(language);
  const body = `    <h1 class="ds-heading" data-size="lg">${escape(title)}</h1>
    <p class="ds-paragraph">${escape(message)}</p>
${detail ? `    <p class="ds-paragraph op-detail"><code>${escape(detail)}</code></p>\n` : ''}${backUrl ? `    <p class="ds-paragraph"><a class="ds-link" href="${escape(backUrl)}">${escape(t.back)}</a></p>\n` : ''}`;
  return layout({ language, title, body });
}

/** The question oidc-provider asks before ending its own session; `form` is its hidden form. */
export function logoutPage({ language, form }) {
  const t = text(language);
  // oidc-provider's form carries the xsrf token and has the id op.logoutForm; the buttons submit it.
  const body = `    <h1 class="ds-heading" data-size="lg">${escape(t.logoutHeading)}</h1>
    <p class="ds-paragraph">${escape(t.logoutText)}</p>
    ${form}
    <div class="op-actions">
      <button type="submit" class="ds-button" data-variant="primary" form="op.logoutForm" name="logout" value="yes">${escape(t.logoutYes)}</button>
      <button type="submit" class="ds-button" data-variant="secondary" form="op.logoutForm">${escape(t.logoutNo)}</button>
    </div>`;
  return layout({ language, title: t.logoutTitle, body });
}
