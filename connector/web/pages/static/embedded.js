/* The merchant pages inside the Shopify admin iframe.
 *
 * There the browser keeps no cookie for us (third-party cookies are blocked), so every request
 * carries a fresh Shopify session token instead, asked of App Bridge (shopify.idToken()):
 * - a POST form is sent with fetch() and "Authorization: Bearer <token>", and the page it
 *   answers with (after redirects, which keep the header on the same origin) replaces this one;
 * - a link or a GET form is followed with the token as ?id_token=, the way the admin itself
 *   opens the app, so downloads (CSV) and the back button keep working.
 * Outside the admin (no parent frame, or no App Bridge) this script does nothing: the pages
 * work with the cookie sign-in and their CSRF tokens as usual.
 */
(function () {
  "use strict";

  var bridge = window.shopify;
  if (window.top === window.self || !bridge || typeof bridge.idToken !== "function") {
    return;
  }
  var host = new URL(window.location.href).searchParams.get("host");

  function forgetToken() {
    // The token is single-use in spirit and expires in a minute: keep it out of the history.
    var here = new URL(window.location.href);
    if (here.searchParams.has("id_token")) {
      here.searchParams.delete("id_token");
      window.history.replaceState(window.history.state, "", here.toString());
    }
  }

  function openWithToken(url) {
    return bridge.idToken().then(function (token) {
      url.searchParams.set("id_token", token);
      if (host && !url.searchParams.has("host")) {
        url.searchParams.set("host", host);
      }
      window.location.assign(url.toString());
    });
  }

  function replacePage(html, url) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.title = doc.title;
    document.body.replaceWith(document.adoptNode(doc.body));
    var shown = new URL(url);
    shown.searchParams.delete("id_token");
    window.history.pushState(null, "", shown.toString());
    window.scrollTo(0, 0);
  }

  function download(response) {
    return response.blob().then(function (blob) {
      var disposition = response.headers.get("Content-Disposition") || "";
      var match = /filename="?([^";]+)"?/.exec(disposition);
      var link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = match ? match[1] : "download";
      document.body.appendChild(link);
      link.click();
      link.remove();
      URL.revokeObjectURL(link.href);
    });
  }

  function send(form, submitter) {
    var method = (submitter && submitter.getAttribute("formmethod")) || form.getAttribute("method") || "get";
    var target = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action") || "";
    var url = new URL(target || window.location.href, window.location.href);
    var data = new FormData(form);
    if (submitter && submitter.name) {
      data.append(submitter.name, submitter.value);
    }
    if (method.toLowerCase() === "get") {
      url.search = new URLSearchParams(data).toString();
      return openWithToken(url);
    }
    return bridge.idToken().then(function (token) {
      return fetch(url.toString(), {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Authorization: "Bearer " + token },
      });
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("text/html") !== 0) {
        return download(response);
      }
      return response.text().then(function (html) {
        replacePage(html, response.url);
      });
    });
  }

  function sameSite(url) {
    return url.origin === window.location.origin;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[href]") : null;
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
        event.shiftKey || event.altKey || link.target || link.hasAttribute("download")) {
      return;
    }
    var url = new URL(link.href, window.location.href);
    if (!sameSite(url) || (url.hash && url.pathname === window.location.pathname && url.search === window.location.search)) {
      return;
    }
    event.preventDefault();
    openWithToken(url);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var target = new URL(form.getAttribute("action") || window.location.href, window.location.href);
    if (event.defaultPrevented || !sameSite(target)) {
      return;
    }
    event.preventDefault();
    var submitter = event.submitter || null;
    if (submitter) {
      submitter.disabled = true;
    }
    send(form, submitter).catch(function (error) {
      window.console.error("could not send the form", error);
      if (submitter) {
        submitter.disabled = false;
      }
    });
  });

  window.addEventListener("popstate", function () {
    openWithToken(new URL(window.location.href));
  });

  forgetToken();
})();
