"""The operators' console over plain HTTP: sign-in, the session cookie and its CSRF check,
roles, pages, the approval card's result in place, the trend data — against a real site
process (the twin as a plant, its DuckDB file, the API on loopback; see site_harness).

The browser itself is driven in test_console_browser.py; here every forged request is
sent by hand, so what the server refuses does not depend on what a page happens to send.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
from agent_harness import Hall
from site_harness import Running, running_site
from test_agent_twin import cdu_policy, until_decision

from agent.context import AgentContext
from agent.web.session import COOKIE
from twin.faults import Fault


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("console")

    def build(hall: Hall) -> AgentContext:
        return AgentContext.build(
            hall.site,
            hall.store,
            hall.writer,
            hall.clock,
            policies=cdu_policy(ceiling=2),
            checkpoint_path=tmp / "c.sqlite",
        )

    with running_site(tmp / "site.duckdb", build) as r:
        yield r


def sign_in(site: Running, role: str) -> tuple[httpx.Client, str]:
    """A client holding the console cookie of ``role``'s user, and the page's CSRF token."""
    c = httpx.Client(base_url=site.url, timeout=60.0)
    r = c.post("/login", data={"token": site.tokens[role]})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    page = c.get("/")
    assert page.status_code == 200, page.text
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert m, page.text[:500]
    return c, m.group(1)


def test_sign_in_sets_a_strict_httponly_session_cookie(site: Running) -> None:
    with httpx.Client(base_url=site.url, timeout=60.0) as c:
        r = c.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert c.get("/login").status_code == 200
        bad = c.post("/login", data={"token": "not-a-token"})
        assert bad.status_code == 401 and "not valid" in bad.text
        assert COOKIE not in c.cookies
        cross = c.post(
            "/login",
            data={"token": site.tokens["viewer"]},
            headers={"Origin": "http://evil.example"},
        )
        assert cross.status_code == 403 and COOKIE not in c.cookies  # no sign-in from elsewhere
        r = c.post("/login", data={"token": site.tokens["viewer"]})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert site.tokens["viewer"] not in cookie  # the cookie holds a session id, not the token
        assert c.get("/me").json() == {"name": "vic", "role": "viewer"}  # API routes take it too


def test_every_page_renders_for_a_viewer_and_shows_the_plant(site: Running) -> None:
    c, _ = sign_in(site, "viewer")
    with closing(c):
        home = c.get("/").text
        for needle in (
            "chiller_1",
            "PUE",
            "IT power",
            "Cooling power",
            "Autonomy ceiling",
            "E-stop",
        ):
            assert needle in home, needle
        assert 'data-tag="plant.pue"' in home
        frag = c.get("/ui/overview", headers={"HX-Request": "true"})
        assert frag.status_code == 200 and "<html" not in frag.text and "chiller_1" in frag.text
        for path in ("/ui/trends", "/ui/approvals", "/ui/decisions", "/ui/controls"):
            r = c.get(path)
            assert r.status_code == 200, (path, r.text[:300])
        assert "E-STOP" not in c.get("/ui/controls").text  # no button a viewer may not press
        assert c.get("/ui/chat").status_code == 403  # chat is an operator's
        for asset in ("/static/vendor/htmx.min.js", "/static/vendor/uPlot.iife.min.js"):
            r = c.get(asset)
            assert r.status_code == 200 and len(r.content) > 10_000, asset


def test_trend_data_rolls_up_the_store_and_marks_unknown_points(site: Running) -> None:
    c, _ = sign_in(site, "viewer")
    with closing(c):
        d = c.get(
            "/ui/trends/data", params={"tags": "plant.it_power,ct_1.fan_speed,nope.x", "span": "1h"}
        ).json()
        day = c.get("/ui/trends/data", params={"tags": "plant.it_power", "span": "1d"}).json()
    assert [s["tag"] for s in d["series"]] == ["plant.it_power", "ct_1.fan_speed"]
    assert d["unknown"] == ["nope.x"] and d["bucket_s"] == 10.0
    assert len(d["t"]) >= 10 and d["t"] == sorted(d["t"])
    values = [v for v in d["series"][0]["values"] if v is not None]
    assert values and all(v > 0 for v in values)
    assert day["bucket_s"] == 120.0 and 0 < len(day["t"]) < len(d["t"])


def test_forged_posts_are_refused(site: Running) -> None:
    """Cookie without or with a wrong CSRF token → 403, viewer cookie → 403; nothing happens.
    A Bearer token (a script) needs no CSRF token."""
    viewer, vcsrf = sign_in(site, "viewer")
    admin, acsrf = sign_in(site, "admin")
    with closing(viewer), closing(admin):
        for client, headers in (
            (admin, {}),
            (admin, {"X-CSRF-Token": "forged"}),
            (admin, {"X-CSRF-Token": vcsrf}),  # another session's token
        ):
            for path, body in (("/estop", {"why": "x"}), ("/autonomy", {"level": 0})):
                r = client.post(path, json=body, headers=headers)
                assert r.status_code == 403 and "CSRF" in r.json()["detail"], (path, r.text)
            r = client.post("/ui/estop", headers=headers)
            assert r.status_code == 403, r.text
        for path in ("/ui/estop", "/ui/approvals/apr-x/approve", "/estop"):
            r = viewer.post(path, headers={"X-CSRF-Token": vcsrf}, json={})
            assert r.status_code == 403 and "viewer" in r.json()["detail"], (path, r.text)
        control = site.do(lambda: site.ctx.control())
        assert not control.estop and control.site_ceiling != 0
        # the right token works; so does a Bearer token without any
        r = admin.post("/ui/autonomy", data={"level": "1"}, headers={"X-CSRF-Token": acsrf})
        assert r.status_code == 200 and "set to 1 by root" in r.text
        with site.client("admin") as script:
            assert script.post("/autonomy", json={"level": 2}).status_code == 200
        assert site.do(lambda: site.ctx.control()).site_ceiling == 2


def test_a_session_ends_with_sign_out_and_with_its_user(site: Running) -> None:
    c, csrf = sign_in(site, "operator")
    with closing(c):
        assert c.post("/logout").status_code == 403  # no CSRF token: not even sign-out
        r = c.post("/logout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 204 and r.headers["hx-redirect"] == "/login"
        c.cookies.clear()
    with site.client("admin") as a:
        tok = a.post("/users", json={"name": "tmp", "role": "operator"}).json()["token"]
    site.tokens["tmp"] = tok
    c, _ = sign_in(site, "tmp")
    with closing(c):
        assert c.get("/me").status_code == 200
        with site.client("admin") as a:
            assert a.delete("/users/tmp").status_code == 200
        assert c.get("/me").status_code == 401
        r = c.get("/ui/approvals")
        assert r.status_code == 303 and r.headers["location"] == "/login"


def test_approving_from_the_page_shows_the_result_in_place(site: Running) -> None:
    """The card answers with what happened: executed with the value read back (or the gate's
    refusal); the overview and the decisions page show the decision's state *now*."""
    site.do(lambda: site.hall.twin.inject(
        Fault(kind="cdu_pump_degradation", target="cdu_1", start_s=0, magnitude=0.7)
    ))  # fmt: skip
    res = site.on_loop(until_decision(site.hall, site.ctx))
    d = res.decisions[0]
    assert d.outcome == "approval_requested", d.explanation
    apr = d.approval_id
    op, csrf = sign_in(site, "operator")
    viewer, _ = sign_in(site, "viewer")
    with closing(op), closing(viewer):
        page = viewer.get("/ui/approvals").text
        assert f'id="approval-{apr}"' in page and "policy gpu_hot" in page
        assert "cdu_1.coolant_supply_setpoint" in page and "expires" in page
        assert "/approve" not in page  # a viewer gets no button
        assert "/approve" in op.get("/ui/approvals").text
        r = op.post(f"/ui/approvals/{apr}/approve", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        assert f'id="approval-{apr}"' in r.text and 'data-state="approved"' in r.text
        assert 'data-outcome="executed"' in r.text and "written and read back" in r.text
        assert re.search(r'class="rb">25(\.0+)?<', r.text), r.text
        assert site.do(lambda: site.hall.twin.values()["cdu_1.coolant_supply_setpoint"]) == 25.0
        again = op.post(f"/ui/approvals/{apr}/approve", headers={"X-CSRF-Token": csrf})
        assert again.status_code == 200 and "already approved" in again.text
        # the live views: executed, never still "approval_requested"
        frag = viewer.get("/ui/overview").text
        row = re.search(r"<td>gpu_hot</td><td class=\"outcome (\w+)\"", frag)
        assert row and row.group(1) == "executed", frag
        dec = viewer.get("/ui/decisions", params={"policy": "gpu_hot"}).text
        assert (
            f'id="dec-{d.decision_id}"' in dec
            and "approval_requested"
            not in dec.split(f'id="dec-{d.decision_id}"')[1].split("</tr>")[0]
        )
        assert (
            viewer.get("/ui/decisions", params={"outcome": "blocked"}).text.count('id="dec-') == 0
        )
