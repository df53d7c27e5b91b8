// Key pairs made in the browser for a client's public keys, with WebCrypto (RS256 or ES256).
//
// The public half is written into the form's JWKS field, which is what gets sent. The private
// half is only ever offered as a download (a Blob URL on a link): it is never put into a form
// field, and nothing here sends anything anywhere. The server refuses private members anyway.
"use strict";

(() => {
  // --- What each algorithm needs -------------------------------------------------------------

  const ALGORITHMS = {
    RS256: {
      params: {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      // The public members, in the lexicographic order RFC 7638 (the thumbprint) asks for.
      publicMembers: ["e", "kty", "n"],
    },
    ES256: {
      params: { name: "ECDSA", namedCurve: "P-256" },
      publicMembers: ["crv", "kty", "x", "y"],
    },
  };

  // --- Encoding ------------------------------------------------------------------------------

  function base64(bytes) {
    let text = "";
    for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
    return btoa(text);
  }

  function base64url(bytes) {
    return base64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function pem(label, der) {
    const lines = base64(der).match(/.{1,64}/g).join("\n");
    return `-----BEGIN ${label}-----\n${lines}\n-----END ${label}-----\n`;
  }

  // --- Keys ------------------------------------------------------------------------------------

  // Only the named public members: never copy a whole exported JWK into what is sent.
  function publicPart(jwk, members) {
    const part = {};
    for (const member of members) part[member] = jwk[member];
    return part;
  }

  // The key's RFC 7638 thumbprint: a kid that names this key and no other.
  async function thumbprint(publicMembers) {
    const canonical = JSON.stringify(publicMembers); // members are already in order
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical));
    return base64url(digest);
  }

  async function makeKeyPair(alg) {
    const { params, publicMembers } = ALGORITHMS[alg];
    const pair = await crypto.subtle.generateKey(params, true, ["sign", "verify"]);
    const exported = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const members = publicPart(exported, publicMembers);
    const kid = await thumbprint(members);
    const publicJwk = { ...members, kid, alg, use: "sig" };
    const privateJwk = { ...(await crypto.subtle.exportKey("jwk", pair.privateKey)), kid, alg, use: "sig" };
    delete privateJwk.key_ops;
    delete privateJwk.ext;
    const pkcs8 = await crypto.subtle.exportKey("pkcs8", pair.privateKey);
    return { kid, publicJwk, privatePem: pem("PRIVATE KEY", pkcs8), privateJwk };
  }

  // --- The page ----------------------------------------------------------------------------------

  function offer(link, text, type, filename) {
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([text], { type }));
    link.download = filename;
  }

  function setUp(widget) {
    const form = widget.closest("form");
    const field = form.querySelector("textarea[name$='jwks']");
    const file = form.querySelector("input[type='file'][name$='jwks_file']");
    const button = widget.querySelector("[data-keygen-generate]");
    const status = widget.querySelector("[data-keygen-status]");
    const result = widget.querySelector("[data-keygen-result]");
    const pemLink = widget.querySelector("[data-keygen-download='pem']");
    const jwkLink = widget.querySelector("[data-keygen-download='jwk']");
    const unavailable = form.querySelector("[data-keygen-unavailable]");

    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      if (unavailable) unavailable.textContent = unavailable.dataset.msgUnsupported;
      return;
    }
    if (unavailable) unavailable.hidden = true;
    widget.hidden = false;

    button.addEventListener("click", async () => {
      const alg = widget.querySelector("input[name='keygen_algorithm']:checked").value;
      button.disabled = true;
      result.hidden = true;
      status.textContent = widget.dataset.msgWorking;
      try {
        const made = await makeKeyPair(alg);
        field.value = JSON.stringify({ keys: [made.publicJwk] }, null, 2);
        if (file) file.value = ""; // one way at a time: the made key replaces any chosen file
        offer(pemLink, made.privatePem, "application/x-pem-file", `${made.kid}.private-key.pem`);
        offer(jwkLink, JSON.stringify(made.privateJwk, null, 2), "application/json", `${made.kid}.private-jwk.json`);
        result.hidden = false;
        status.textContent = widget.dataset.msgDone.replace("{kid}", made.kid);
        pemLink.focus();
      } catch (error) {
        status.textContent = widget.dataset.msgFailed;
        console.error(error);
      } finally {
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-keygen]").forEach(setUp);
  });
})();
