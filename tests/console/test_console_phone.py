"""Every page of each role on a phone (390 px wide) and on a laptop (1280 px), in Chromium:
nothing overflows the page sideways, no menu label is squeezed narrower than two characters,
every button lies inside the viewport, and the text the browser shows once the scripts ran
(SLA countdowns included) has no English words outside the allow-list. Screenshots of each page at both widths go to
test-artifacts/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import PASSWORD, SCREENSHOTS, Site
from tests.console.latin_words import stray_latin_words
from tests.console.test_console_language import names_in_the_data

pytestmark = pytest.mark.browser
PHONE, LAPTOP = 390, 1280

#: the pages each role works in (its menu), plus a case and a ticket
_PAGES = {
    "agent": ["/queue", "/cases/{case}", "/review", "/second-callbacks", "/tickets",
              "/tickets/{ticket}", "/tokens"],
    "supervisor": ["/tickets", "/tickets/{ticket}", "/dashboard", "/tokens"],
    "inspector": ["/dashboard", "/queue", "/review", "/tickets", "/second-callbacks", "/audit",
                  "/tokens"],
    "admin": ["/dashboard", "/queue", "/cases/{case}", "/review", "/tickets",
              "/second-callbacks", "/scripts", "/scripts/edit", "/campaigns", "/units",
              "/users", "/audit", "/tokens", "/no-such-page"],
}  # fmt: skip

_MEASURE = """() => {
  const width = window.innerWidth;
  const em = parseFloat(getComputedStyle(document.body).fontSize);
  const seen = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const name = (el) => (el.id ? '#' + el.id : el.tagName.toLowerCase()) + ' ' + el.innerText.trim().slice(0, 20);
  return {
    scrollWidth: document.documentElement.scrollWidth,
    squeezed: [...document.querySelectorAll('header nav a')]
      .filter((a) => seen(a) && a.getBoundingClientRect().width < 2 * em * 0.9).map(name),
    outside: [...document.querySelectorAll('button, a.button, input[type=submit]')]
      .filter((b) => seen(b)).filter((b) => {
        const r = b.getBoundingClientRect();
        return r.left < -1 || r.right > width + 1;
      }).map(name),
    // the words as the browser shows them (after the scripts ran), without code and the
    // English switch, for the language check
    text: (() => {
      const copy = document.body.cloneNode(true);
      copy.querySelectorAll('code, pre, script, textarea.code, #lang-switch, [translate=no]')
        .forEach((el) => el.remove());
      document.body.appendChild(copy);
      copy.hidden = false;
      const shown = copy.innerText;
      copy.remove();
      return shown;
    })(),
  };
}"""


def _ticket_id(site: Site) -> int:
    from sqlalchemy import select
    from sqlmodel import Session

    from huifang.domain.models import Ticket

    with Session(site.engine) as session:
        found = session.execute(select(Ticket.id).where(Ticket.unit_id == site.data.s1.id)).first()
        if found is None:
            found = session.execute(select(Ticket.id)).first()
    assert found is not None
    return int(found[0])


def _logged_in_page(browser: Any, site: Site, role: str, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 844}, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{site.url}/login?lang=zh-CN")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


@pytest.mark.parametrize("role", list(_PAGES))
def test_every_page_fits_a_phone_and_a_laptop(browser: Any, site: Site, role: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ids = {"case": site.complaint_id, "ticket": _ticket_id(site)}
    problems: dict[str, Any] = {}
    names = names_in_the_data(site)
    for width in (PHONE, LAPTOP):
        page = _logged_in_page(browser, site, role, width)
        try:
            for path in _PAGES[role]:
                address = path.format(**ids)
                page.goto(site.url + address)
                page.wait_for_load_state("networkidle")
                found = page.evaluate(_MEASURE)
                name = f"{role}{address.replace('/', '-')}-{width}"
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
                shown = found.pop("text")
                assert "退出" in shown, f"{address}: the page's text was not read"
                english = stray_latin_words(shown, names)
                if found["scrollWidth"] > width or found["squeezed"] or found["outside"]:
                    problems[f"{address} at {width}px"] = found
                if english:
                    problems[f"{address} at {width}px: English"] = sorted(set(english))
        finally:
            page.context.close()
    assert problems == {}
