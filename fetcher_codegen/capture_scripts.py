"""The JavaScript the explorer (:mod:`fetcher_codegen.capture`) runs inside pages.

Each snippet is one function for ``page.evaluate`` / ``locator.evaluate``; none of them sends
anything anywhere except ``FETCH_JS``, which makes the one request it is given (so that it
lands in the HAR with the page's cookies).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

FETCH_JS = """
async ({url, method, headers, form, json}) => {
  const init = {method, headers: Object.assign({}, headers || {}), credentials: "include"};
  if (form) {
    init.body = new URLSearchParams(form).toString();
    init.headers["Content-Type"] = "application/x-www-form-urlencoded";
  } else if (json !== null && json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  try {
    const r = await fetch(url, init);
    const type = r.headers.get("content-type") || "";
    let text = null;
    if (/json|xml|csv|text|html|javascript/i.test(type) || !type) {
      text = (await r.text()).slice(0, 5000000);
    } else {
      await r.arrayBuffer();
    }
    return {status: r.status, type, text, url: r.url};
  } catch (e) {
    return {status: 0, type: "", text: null, url, error: String(e)};
  }
}
"""
FIND_NEXT_JS = """
() => {
  // "Next", "Next page »", "Older invoices →": the words (next/older/earlier and at most two
  // more words), then at most a few arrows or signs
  const words = new RegExp("^(?:(?:(?:next|older|earlier)(?:\\\\s+[\\\\p{L}-]+){0,2}|more|"
    + "load more|show more|see more|view more|more results)[^\\\\p{L}\\\\p{N}]{0,3}"
    + "|[›»>→]{1,2})$", "iu");
  // "More offers", "Load more jobs", "Show 20 more": a short label built around "more"
  const moreWords = /^((load|show|see|view|get)\\s+)?(\\d+\\s+)?more(\\s+[\\w-]+){0,2}$/i;
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"
      && !el.disabled && el.getAttribute("aria-disabled") !== "true" && !el.hidden;
  };
  const label = (el) => (el.getAttribute("aria-label") || el.innerText || el.value
    || el.title || "").trim().replace(/\\s+/g, " ");
  const local = (el) => {
    const href = el.getAttribute("href");
    if (!href || href.startsWith("#") || href.startsWith("javascript:")) return true;
    try { return new URL(href, location.href).origin === location.origin; }
    catch (e) { return false; }
  };
  document.querySelectorAll("[data-amazoniax-next]")
    .forEach((e) => e.removeAttribute("data-amazoniax-next"));
  const all = [...document.querySelectorAll(
    "a[href], button, [role=button], input[type=button], input[type=submit], "
    // controls a script makes clickable: a link target in a data attribute, an onclick
    + "[data-href], [data-url], [data-next], [data-next-url], [onclick]")]
    .filter((el) => visible(el) && local(el) && !el.closest("form[method=post]"));
  const rules = [
    ["rel", (el) => /(^|\\s)next(\\s|$)/i.test(el.getAttribute("rel") || "")],
    ["aria-label", (el) => /\\b(next|more|older)\\b/i.test(el.getAttribute("aria-label") || "")
      && !/prev/i.test(el.getAttribute("aria-label") || "")],
    ["data-next", (el) => ["data-next", "data-next-url", "data-next-page", "data-cursor"]
      .some((name) => el.hasAttribute(name))],
    ["text", (el) => words.test(label(el))],
    // numbered pages: the link right after the current page's marker, numbered one more
    ["after-current", (el) => {
      const prev = el.previousElementSibling;
      if (!prev || prev.getAttribute("aria-current") !== "page") return false;
      return /^\\d+$/.test(label(el)) && Number(label(el)) === Number(label(prev)) + 1;
    }],
    ["more", (el) => moreWords.test(label(el)) && !/\\b(less|fewer)\\b/i.test(label(el))],
  ];
  for (const [how, test] of rules) {
    const pick = all.find(test);
    if (pick) {
      pick.setAttribute("data-amazoniax-next", "1");
      return {how, text: label(pick).slice(0, 60), tag: pick.tagName.toLowerCase(),
              rel: pick.getAttribute("rel"), aria: pick.getAttribute("aria-label"),
              id: pick.id || null,
              cls: (typeof pick.className === "string" ? pick.className : "") || null,
              href: pick.getAttribute("href")};
    }
  }
  return null;
}
"""
FIND_SEARCH_FORM_JS = """
() => {
  // A visible form that asks for no password and sends with GET (the default): a search or a
  // filter. Its submit control is marked; its fields keep the defaults the page gives them.
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  document.querySelectorAll("[data-amazoniax-submit]")
    .forEach((e) => e.removeAttribute("data-amazoniax-submit"));
  for (const form of document.querySelectorAll("form")) {
    if ((form.getAttribute("method") || "get").toLowerCase() !== "get") continue;
    if (form.querySelector("input[type=password]") || !visible(form)) continue;
    const submit = form.querySelector(
      "button[type=submit], button:not([type]), input[type=submit], input[type=image]");
    if (!submit || !visible(submit) || submit.disabled) continue;
    submit.setAttribute("data-amazoniax-submit", "1");
    const label = (submit.innerText || submit.value || submit.getAttribute("aria-label") || "")
      .trim().slice(0, 60);
    return {label, fields: form.querySelectorAll("input, select, textarea").length};
  }
  return null;
}
"""
SELECTOR_JS = """
(el) => {
  const tag = el.tagName.toLowerCase();
  if (el.id && /^[A-Za-z][-\\w]*$/.test(el.id)) return "#" + el.id;
  const name = el.getAttribute("name");
  if (name) return tag + "[name=" + JSON.stringify(name) + "]";
  const type = el.getAttribute("type");
  if (type) return tag + "[type=" + JSON.stringify(type) + "]";
  return tag;
}
"""
DATA_LINKS_JS = """
() => {
  const out = [];
  for (const el of document.querySelectorAll("link[rel~=alternate][href]")) {
    const type = (el.getAttribute("type") || "").toLowerCase();
    if (/rss|atom|xml|json/.test(type)) out.push({href: el.href, text: "feed " + type, feed: true});
  }
  for (const el of document.querySelectorAll("a[href]")) {
    out.push({href: el.href, text: (el.innerText || el.title || "").trim().slice(0, 80),
              feed: false, download: el.hasAttribute("download")});
  }
  return out;
}
"""


__all__ = ["DATA_LINKS_JS", "FETCH_JS", "FIND_NEXT_JS", "FIND_SEARCH_FORM_JS", "SELECTOR_JS"]


def next_selector(found: Mapping[str, Any]) -> str:
    """A CSS selector for the control the explorer clicked, as stable as its markup allows."""
    tag = str(found.get("tag") or "a")
    if found.get("how") == "rel":
        return f'{tag}[rel~="next"]'
    if found.get("how") == "after-current":
        return f'[aria-current="page"] + {tag}'
    if found.get("how") == "aria-label" and found.get("aria"):
        return f'{tag}[aria-label="{_css_string(str(found["aria"]))}"]'
    if found.get("id"):
        return f"#{found['id']}"
    classes = [c for c in str(found.get("cls") or "").split() if c]
    if classes:
        return tag + "".join(f".{c}" for c in classes)
    return f'{tag}:text-is("{_css_string(str(found.get("text") or ""))}")'


def _css_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
