"""The promotion overview: one static HTML page that says, across every case of a run, who may be
promoted and why. Built on the controller from the case records (simgate.contract) and the
verdict document (simgate.reporting.promotion), read defensively: a field it lacks is left out.

Sections: the decision and each candidate's verdict with its reasons; a candidate × scenario
matrix coloured by outcome with each cell's dominant failure mode; failure modes ranked across
cases (informational ones included, with exact intervals); candidate vs baseline charts; the
robustness curves of every swept scenario. Pictures are embedded (data: URIs), so the page is
one file that Allure shows in its description and as an attachment."""

from __future__ import annotations

import base64
import html
import math

from simgate.distributions import beta_ppf
from simgate.reporting import compare, plots
from simgate.reporting.search_plots import axes_of, caption, confidence, counterexample_title, counterexamples_of
from simgate.verdict import NOT_WORSE, SUCCESS_RATE, TORQUE_VS_BASELINE

BG = {"PASS": "#d5f5e3", "FAIL": "#f5b7b1", "INCONCLUSIVE": "#fdebd0", "ERROR": "#e8daef"}
FG = {"PASS": "#1e8449", "FAIL": "#a93226", "INCONCLUSIVE": "#b9770e", "ERROR": "#6c3483",
      "INVALID": "#6c3483"}
MAX_TORQUE_CHARTS = 4
_UNITS = {"_ms": "ms", "_deg": "°", "_kg": "kg", "_m": "m", "_n": "N", "_hz": "Hz", "_s": "s"}


def case_key(payload: dict) -> str:
    """The case without its policy: the row of the matrix (scenario and matrix point)."""
    case = payload.get("case", {})
    cid, policy = case.get("id", "?"), case.get("policy", "")
    return cid[: -len(policy) - 1] if policy and cid.endswith("-" + policy) else cid


def success_of(payload: dict) -> tuple[int, int] | None:
    req = next((r for r in payload.get("requirements", []) if r.get("kind") == SUCCESS_RATE), None)
    if req is None:
        return None
    numbers = req.get("numbers", {})
    return int(numbers.get("k", numbers.get("successes", 0))), int(numbers.get("n", payload.get("episodes", 0)))


def dominant(payload: dict) -> tuple[str, int] | None:
    """The most frequent failure mode and its count (records read from JSON have sorted keys)."""
    modes = payload.get("failure_modes") or {}
    return min(modes.items(), key=lambda kv: (-kv[1], kv[0])) if modes else None


def axis_label(axis: str, case: dict) -> str:
    """A matrix axis with what it sets and its unit: 'friction: scale_friction.sliding (× nominal)'."""
    value = (case.get("point") or {}).get(axis)
    where = next((f"{p['kind']}.{name}" for p in case.get("perturbations", [])
                  for name, v in (p.get("params") or {}).items() if v == value), None)
    unit = next((u for suffix, u in _UNITS.items() if axis.endswith(suffix)), None)
    if unit is None and where and where.startswith("scale_"):
        unit = "× nominal"
    return f"{axis}" + (f": {where}" if where else "") + (f" ({unit})" if unit else "")


def curves(results: dict[str, dict]) -> list[dict]:
    """Robustness curves: per (scenario, numeric matrix axis) with two or more points, every
    policy's success over the axis with each point's verdict."""
    groups: dict[tuple, dict] = {}
    for payload in results.values():
        case = payload.get("case", {})
        point, success = case.get("point") or {}, success_of(payload)
        if success is None or len(point) != 1:
            continue
        (axis, value), = point.items()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        outcome = next(r["outcome"] for r in payload["requirements"] if r.get("kind") == SUCCESS_RATE)
        group = groups.setdefault((case.get("scenario"), axis), {
            "scenario": case.get("scenario"), "env": case.get("env"), "axis": axis, "xlabel": axis_label(axis, case),
            "alpha": case.get("alpha", 0.05), "required": (case.get("thresholds") or {}).get("min_success_rate"),
            "gate": case.get("gate", True), "series": {}})
        group["series"].setdefault(case.get("policy"), []).append((float(value), *success, outcome))
    return [g for _, g in sorted(groups.items()) if max(len(s) for s in g["series"].values()) >= 2]


def ranked_modes(results: dict[str, dict]) -> list[dict]:
    """Failure modes per policy ranked by episodes, across all cases (informational included)."""
    rows: dict[tuple, dict] = {}
    for payload in results.values():
        case = payload.get("case", {})
        for mode, count in (payload.get("failure_modes") or {}).items():
            row = rows.setdefault((mode, case.get("policy")), {"mode": mode, "policy": case.get("policy"), "episodes": 0,
                                                               "of": 0, "cases": []})
            row["episodes"] += count
            row["of"] += max(payload.get("episodes") or 0, count)
            row["cases"].append((count, case_key(payload), payload.get("episodes") or 0, case.get("gate", True)))
    out = sorted(rows.values(), key=lambda r: (-r["episodes"], r["mode"], r["policy"]))
    for row in out:
        row["cases"].sort(key=lambda c: (-c[0], c[1]))
        row["interval"] = _exact_interval(row["episodes"], row["of"])
    return out


def _exact_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    a = (1 - level) / 2
    return (0.0 if k == 0 else beta_ppf(a, k, n - k + 1)), (1.0 if k == n else beta_ppf(1 - a, k + 1, n - k))


def confirmed_regressions(verdict: dict | None) -> set[str]:
    """Case ids whose findings against the baseline the promotion verdict confirmed (Holm over
    each candidate's cases)."""
    return {cid for c in ((verdict or {}).get("candidates") or {}).values() for cid in c.get("regression_alarms") or []}


def is_regression(payload: dict, confirmed: set[str]) -> bool:
    """Confirmed by the verdict; or, in records that decided it per case, a failed finding."""
    return payload.get("case", {}).get("id") in confirmed or any(
        r.get("kind") in (NOT_WORSE, TORQUE_VS_BASELINE) and r.get("outcome") == "FAIL"
        for r in payload.get("requirements", []))


def candidate_state(candidate: dict) -> tuple[str, str]:
    """(short verdict, outcome) of one candidate in the verdict document: the outcome is PASS,
    FAIL, INCONCLUSIVE or INVALID (:mod:`simgate.reporting.promotion`), also the colour key."""
    if candidate.get("promote"):
        return "PASS: may be promoted", "PASS"
    if candidate.get("passed"):
        return "INVALID: met every requirement, but the run is incomplete: not promoted", "INVALID"
    if not candidate.get("complete", True):
        return f"INVALID: {len(candidate.get('not_evaluated', []))} case(s) not evaluated", "INVALID"
    outcome = candidate.get("outcome") or "FAIL"  # (a verdict written before the four outcomes: blocked)
    return f"{outcome}: blocked by {len(candidate.get('blocking', []))} finding(s)", outcome


def perturbation_costs(results: dict[str, dict]) -> list[tuple[str, dict[str, dict]]]:
    """Each perturbed matrix point (scenario and point) with what it costs each policy (its
    benign arm: :mod:`simgate.benign`), the costliest first (by its largest drop)."""
    points: dict[str, dict[str, dict]] = {}
    for payload in results.values():
        arm, case = payload.get("benign"), payload.get("case", {})
        if not arm:
            continue
        point = ", ".join(f"{k}={v}" for k, v in (case.get("point") or {}).items())
        label = case.get("scenario", "?") + (f" ({point})" if point else "")
        points.setdefault(label, {})[case.get("policy", "?")] = arm
    return sorted(points.items(), key=lambda item: (-max(a["drop"] for a in item[1].values()), item[0]))


def _costs_table(results: dict[str, dict], policies: list[str]) -> list[str]:
    """Perturbations ranked by what they cost: each policy's drop from its benign arm (the same
    seeds with the perturbation off), with its 95 % interval."""
    ranked = perturbation_costs(results)
    if not ranked:
        return []
    e = html.escape
    shown = [p for p in policies if any(p in arms for _, arms in ranked)]
    out = ["<h3>What each perturbation costs (benign arm: the same seeds with it switched off)</h3>",
           '<table style="border-collapse:collapse;margin:6px 0"><tr><th style="text-align:left;padding:3px 6px">'
           "perturbation</th>" + "".join(f'<th style="padding:3px 6px">{e(p)}</th>' for p in shown) + "</tr>"]
    for label, arms in ranked:
        cells = []
        for policy in shown:
            arm = arms.get(policy)
            cells.append('<td style="padding:3px 6px;text-align:center">' + (
                f"<b>{100 * arm['drop']:.0f}</b> points<br><small>95% {100 * arm['low']:.0f} to {100 * arm['high']:.0f}; "
                f"{arm['benign_successes']}→{arm['perturbed_successes']}/{arm['n']}</small>" if arm else "") + "</td>")
        out.append(f'<tr style="border-top:1px solid #ddd"><td style="padding:3px 6px">{e(label)}</td>{"".join(cells)}</tr>')
    out.append("</table><p><small>A drop is the success rate without the perturbation minus with it, on the same "
               "episodes (paired; Newcombe's interval). It describes the perturbation's cost; it blocks nothing.</small></p>")
    return out


def story(policy: str, results: dict[str, dict], confirmed: set[str] = frozenset()) -> str:
    """One sentence per policy: where it fails (gating), how, and where informational cases fail."""
    gating, undecided, info = [], [], []
    for payload in sorted(results.values(), key=case_key):
        case = payload.get("case", {})
        regression = is_regression(payload, confirmed)
        if case.get("policy") != policy or (payload.get("outcome") == "PASS" and not regression):
            continue
        top = dominant(payload)
        s = success_of(payload)
        why = [f"{top[0]} {top[1]} of {payload.get('episodes')}"] if top else []
        if payload.get("outcome") == "PASS":
            why = []  # it passed its own requirements: only the baseline comparison speaks against it
        if regression:
            why += [_regression_phrase(r) for r in payload.get("requirements", [])
                    if r.get("kind") in (NOT_WORSE, TORQUE_VS_BASELINE) and _finding(r)]
        if s and not why:
            why = [f"success {s[0]}/{s[1]}"]
        said = f"{case_key(payload)} ({', '.join(why) or payload.get('outcome')})"
        if not case.get("gate", True):
            info.append(said)
        elif payload.get("outcome") == "INCONCLUSIVE" and not regression:
            undecided.append(said)  # not a failure: the episodes run did not decide it
        else:
            gating.append(said)
    text = f"fails {'; '.join(gating)}" if gating else (
        "fails no gating case" if undecided else "passes every gating case")
    if undecided:
        text += f". Not decided (INCONCLUSIVE: needs more episodes): {'; '.join(undecided)}"
    if info:
        text += f". Informational (never blocking): fails {'; '.join(info)}"
    return text + "."


def _finding(req: dict) -> bool:
    """Whether one regression requirement speaks against the candidate in its own case."""
    n = req.get("numbers", {})
    if req.get("outcome") == "FAIL" or n.get("uncorrected_outcome") == "FAIL":
        return True
    return any(j.get("p_regression", 1.0) <= n.get("alpha", 0.05) or j.get("test") == "FAIL"
               for j in (n.get("joints") or {}).values())


def _regression_phrase(req: dict) -> str:
    baseline = req.get("numbers", {}).get("baseline") or req.get("name", "").split(" vs ", 1)[-1].split(" than ", 1)[-1]
    if req.get("kind") == NOT_WORSE:
        return f"less success than {baseline}"
    joints = req.get("numbers", {}).get("joints") or {}
    worst = max(joints, key=lambda j: joints[j].get("relative", 0.0), default=None)
    more = f" (+{joints[worst]['relative']:.1%} at {worst})" if worst and joints[worst].get("relative", 0) > 0 else ""
    return f"more torque than {baseline}{more}"


def description_html(results: dict[str, dict], verdict: dict | None) -> str:
    """What Allure 2 shows as the overview result's description: it strips styles and images, so
    plain text: the decision and, per candidate, its verdict and where it fails."""
    e = html.escape
    verdict = verdict or {}
    items = []
    policies = sorted({p.get("case", {}).get("policy") for p in results.values()} | set(verdict.get("candidates", {})))
    for policy in policies:
        candidate = verdict.get("candidates", {}).get(policy, {})
        state = candidate_state(candidate)[0] if candidate else "not in the verdict"
        items.append(f"<li><b>{e(policy)}: {e(state)}</b>. {e(story(policy, results, confirmed_regressions(verdict)))}</li>")
    searched = "".join(f"<li>{e(line)}</li>" for line in search_lines(results))
    return (f"<p><b>Promotion: {e(verdict.get('decision', 'UNKNOWN'))}</b></p><ul>{''.join(items)}</ul>"
            + (f"<p><b>Searches</b> (operating envelopes):</p><ul>{searched}</ul>" if searched else "")
            + "<p>The matrix of cases, the failure modes ranked across cases, candidate vs baseline and the "
            "robustness curves: the attachment <b>promotion overview.html</b> below.</p>")


def search_rows(results: dict[str, dict]) -> list[dict]:
    """Per search case (a record with a ``search`` dict): its certificate, its
    counterexamples, the risk model's AUC and the episodes it used."""

    rows = []
    for payload in sorted(results.values(), key=case_key):
        search = payload.get("search")
        if not isinstance(search, dict):
            continue
        case = payload.get("case", {})
        rows.append({"case": case_key(payload), "policy": case.get("policy"), "gate": case.get("gate", True),
                     "outcome": payload.get("outcome"), "certificate": (search.get("certificate") or {}).get("status"),
                     "counterexamples": len(counterexamples_of(search)), "auc": search.get("auc"),
                     "episodes": (search.get("episodes") or {}).get("total"), "search": search})
    return rows


def search_lines(results: dict[str, dict]) -> list[str]:
    """One line per search case: 'quadruped_search · quadruped-robust: envelope PASS, no counterexample'."""
    out = []
    for row in search_rows(results):
        found = row["counterexamples"]
        out.append(f"{row['case']} · {row['policy']}: envelope {row['certificate'] or 'not certified'}, "
                   + (f"{found} counterexample(s)" if found else "no counterexample")
                   + (f", AUC {row['auc']:.2f}" if isinstance(row["auc"], (int, float)) else "")
                   + (f", {row['episodes']} episodes" if row["episodes"] is not None else "")
                   + ("" if row["gate"] else " (informational)"))
    return out


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%;margin:6px 0">'


def _charts(results: dict[str, dict], verdict: dict | None = None) -> dict[str, list[tuple[str, bytes]]]:
    """PNG charts by section; empty without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return {}
    out: dict[str, list] = {"curves": [], "baseline": []}
    for group in curves(results):
        kind = "gate" if group["gate"] else "informational"
        out["curves"].append((f"robustness curve: {group['scenario']} over {group['axis']}",
                              plots.robustness_curve(group["xlabel"], group["series"], group["required"], group["alpha"],
                                                     f"{group['scenario']} ({kind}): success vs {group['axis']}")))
    by_candidate: dict[str, list] = {}
    for payload in sorted(results.values(), key=case_key):
        case = payload.get("case", {})
        for req in payload.get("requirements", []):
            n = req.get("numbers", {})
            if (req.get("kind") == NOT_WORSE and case.get("gate", True) and success_of(payload)
                    and n.get("baseline") != case.get("policy")):  # the baseline against itself says nothing
                k, total = success_of(payload)
                bk = round((k / total - n.get("difference", 0.0)) * total) if total else 0
                by_candidate.setdefault((case.get("policy"), n.get("baseline", "baseline")), []).append(
                    {"case": case_key(payload), "k": k, "n": total, "bk": bk, "outcome": payload.get("outcome"),
                     "required": (case.get("thresholds") or {}).get("min_success_rate", math.nan),
                     "alpha": case.get("alpha", 0.05)})
    for (policy, baseline), rows in sorted(by_candidate.items()):
        fig = plots.success_vs_baseline_figure(rows, policy, baseline, rows[0]["alpha"])
        out["baseline"].append((f"success: {policy} vs {baseline}", plots.png(fig)))

    for (policy, baseline), rows in sorted(compare.paired_rows(results).items()):
        out["baseline"].append((f"paired outcomes: {policy} vs {baseline}",
                                plots.png(compare.paired_figure(rows, policy, baseline))))
    for scenario, axes in sorted(compare.boundary_rows(results).items()):
        out["curves"].append((f"search boundaries: {scenario}", plots.png(compare.boundaries_figure(scenario, axes))))
    confirmed = confirmed_regressions(verdict)
    torque = [p for p in results.values() for r in p.get("requirements", [])
              if r.get("kind") == TORQUE_VS_BASELINE and _finding(r)]
    # cases whose own torque test speaks against the candidate: confirmed regressions first, then
    # gating cases; a few charts, the rest are on each case's page
    order = lambda p: (p.get("case", {}).get("id") not in confirmed, not p.get("case", {}).get("gate", True), case_key(p))
    for payload in sorted(torque, key=order)[:MAX_TORQUE_CHARTS]:
        case = payload.get("case", {})
        req = next(r for r in payload.get("requirements", []) if r.get("kind") == TORQUE_VS_BASELINE)
        means = {k[len("mean_abs_torque["):-1]: v for k, v in (payload.get("metrics") or {}).items()
                 if k.startswith("mean_abs_torque[") and v is not None}
        baseline = req["name"].split(" vs ", 1)[-1]
        fig = plots.torque_vs_baseline_figure(case_key(payload), req.get("numbers", {}), means, case.get("policy"),
                                              baseline, case.get("alpha", 0.05), case.get("id") in confirmed)
        if fig is not None:
            out["baseline"].append((f"torque: {case.get('id')}", plots.png(fig)))
    return out


def overview_html(results: dict[str, dict], verdict: dict | None, charts: dict | None = None) -> str:
    verdict = verdict or {}
    charts = _charts(results, verdict) if charts is None else charts
    confirmed = confirmed_regressions(verdict)
    e = html.escape
    decision = verdict.get("decision", "UNKNOWN")
    parts = ['<div style="font-family:sans-serif;font-size:13px;max-width:1200px">',
             f'<h2 style="margin:4px 0">Promotion: <span style="color:{FG.get(decision, "#333")}">{e(decision)}</span></h2>']
    if not verdict.get("complete", True):
        lacks = []
        if verdict.get("deselected"):
            lacks.append(f"{len(verdict['deselected'])} case(s) not selected")
        if verdict.get("missing"):
            lacks.append(f"{len(verdict['missing'])} case(s) did not report")
        if verdict.get("interrupted"):
            lacks.append("the run was interrupted")
        parts.append(f"<p><b>Incomplete run</b>: {e('; '.join(lacks) or 'not every case reported')}. Nobody is promoted.</p>")
    parts.append('<table style="border-collapse:collapse;margin:6px 0"><tr><th style="text-align:left;padding:4px 8px">'
                 'candidate</th><th style="text-align:left;padding:4px 8px">verdict</th>'
                 '<th style="text-align:left;padding:4px 8px">why</th></tr>')
    policies = sorted({p.get("case", {}).get("policy") for p in results.values()} | set(verdict.get("candidates", {})))
    for policy in policies:
        candidate = verdict.get("candidates", {}).get(policy, {})
        state, colour = candidate_state(candidate) if candidate else ("INVALID: not in the verdict", "INVALID")
        reasons = list(candidate.get("blocking", [])) + list(candidate.get("not_evaluated", []))
        why = "".join(f"<li>{e(r)}</li>" for r in reasons[:12])
        if len(reasons) > 12:
            why += f"<li>… and {len(reasons) - 12} more (verdict.json)</li>"
        why += "".join(f'<li style="color:#b9770e">warning: {e(w)}</li>' for w in candidate.get("warnings", []))
        parts.append(f'<tr style="border-top:1px solid #ccc;vertical-align:top"><td style="padding:4px 8px"><b>{e(policy)}</b></td>'
                     f'<td style="padding:4px 8px;color:{FG[colour]};font-weight:bold">{e(state)}</td>'
                     f'<td style="padding:4px 8px"><i>{e(story(policy, results, confirmed))}</i><ul style="margin:2px 0">{why}</ul></td></tr>')
    parts.append("</table>")
    parts += _matrix(results, policies, confirmed)
    parts += _search_table(results)
    parts += _costs_table(results, policies)
    parts += _modes_table(results)
    if charts.get("baseline"):
        parts.append("<h3>Candidate vs baseline (the same episodes)</h3>")
        parts += [_img(png, name) for name, png in charts["baseline"]]
    if charts.get("curves"):
        parts.append("<h3>Robustness curves</h3>")
        parts += [_img(png, name) for name, png in charts["curves"]]
    parts.append("</div>")
    return "\n".join(parts)


def _matrix(results: dict[str, dict], policies: list[str], confirmed: set[str] = frozenset()) -> list[str]:
    e = html.escape
    cells: dict[tuple, dict] = {}
    rows: dict[str, tuple] = {}
    for payload in results.values():
        case = payload.get("case", {})
        key = case_key(payload)
        cells[(key, case.get("policy"))] = payload
        rows[key] = (case.get("env", ""), not case.get("gate", True), key)
    out = ["<h3>Cases × candidates</h3>",
           '<p style="margin:2px 0">Cell: verdict, successes, dominant failure mode (episodes). Pale, italic: '
           'informational (<code>gate: false</code>), never blocking. <b>regr.</b>: a regression against the baseline '
           'that the promotion verdict confirmed (it blocks even where the case itself passed).</p>',
           '<table style="border-collapse:collapse">',
           "<tr><th style='text-align:left;padding:3px 6px'>case</th>"
           + "".join(f"<th style='padding:3px 6px'>{e(p)}</th>" for p in policies) + "</tr>"]
    for key in sorted(rows, key=lambda k: rows[k]):
        env, info, _ = rows[key]
        line = [f"<tr><td style='padding:3px 6px;border:1px solid #ddd'>{e(key)}"
                + (" <span style='color:#888'>(info)</span>" if info else "") + "</td>"]
        for policy in policies:
            payload = cells.get((key, policy))
            if payload is None:
                line.append("<td style='border:1px solid #ddd'></td>")
                continue
            outcome = payload.get("outcome", "ERROR")
            s = success_of(payload)
            top = dominant(payload)
            regression = is_regression(payload, confirmed)
            text = f"<b>{outcome}</b>" + (f" {s[0]}/{s[1]}" if s else "")
            text += f"<br>{e(top[0])} {top[1]}" if top else ""
            text += " <b>regr.</b>" if regression else ""
            style = f"background:{BG.get(outcome, '#eee')};padding:3px 6px;border:1px solid #ddd;text-align:center"
            if info:
                style += ";opacity:0.6;font-style:italic"
            if regression:  # blocks promotion whatever the case's own outcome
                style += ";outline:3px solid #a93226;outline-offset:-3px"
            line.append(f"<td style='{style}'>{text}</td>")
        out.append("".join(line) + "</tr>")
    out.append("</table>")
    return out


def _search_table(results: dict[str, dict]) -> list[str]:
    """The search cases: certificate, counterexamples (the first, shrunk), boundaries per axis."""
    rows = search_rows(results)
    if not rows:
        return []

    e = html.escape
    out = ["<h3>Searches: the operating envelope</h3>",
           "<p style='margin:2px 0'>Each search case certifies its envelope (success ≥ target at every covering "
           "design point, family-wise) or shows the smallest failing combination it found inside it. Pictures, and "
           "every counterexample as a step of its case (an example where the certificate passes): the case's "
           "page in Allure.</p>",
           _table_head("case", "policy", "envelope", "counterexamples", "boundary per axis")]
    for row in rows:
        search = row["search"]
        cert = row["certificate"] or "not certified"
        colour = FG.get(cert, "#333")
        counter = counterexamples_of(search)
        found = (f"{len(counter)}: {e(counterexample_title(counter[0], axes_of(search)))} "
                 f"({e(str(counter[0].get('mode') or 'failed'))})" if counter else "none")
        per_axis = (search.get("boundary") or {}).get("per_axis") or {}
        bounds = "<br>".join(f"{e(a['name'])}: {e(caption(a, per_axis.get(a['name']), search.get('target'), confidence(search, per_axis.get(a['name'])), len(axes_of(search)) > 1))}"
                             for a in axes_of(search))
        style = "" if row["gate"] else ";opacity:0.6;font-style:italic"
        out.append(f"<tr style='border-top:1px solid #ddd;vertical-align:top{style}'><td style='padding:3px 6px'>{e(row['case'])}</td>"
                   f"<td style='padding:3px 6px'>{e(str(row['policy']))}</td>"
                   f"<td style='padding:3px 6px;color:{colour};font-weight:bold'>{e(cert)}</td>"
                   f"<td style='padding:3px 6px'>{found}</td><td style='padding:3px 6px'>{bounds}</td></tr>")
    out.append("</table>")
    return out


def _modes_table(results: dict[str, dict]) -> list[str]:
    e = html.escape
    ranked = ranked_modes(results)
    if not ranked:
        return ["<h3>Failure modes</h3><p>No failed episode.</p>"]
    out = ["<h3>Failure modes ranked across cases</h3>",
           "<p style='margin:2px 0'>Each failed episode counts once, under its primary mode (the first rule that "
           "matches: a robot that fell with saturated motors is <i>saturated</i>). Rate: of all episodes of the cases "
           "where the mode occurs, with an exact 95 % interval (descriptive; verdicts use each case's one-sided bound).</p>",
           _table_head("mode", "policy", "episodes", "rate [95 % interval]", "where (informational in italics)")]
    for row in ranked:
        low, high = row["interval"]
        where = ", ".join((f"{e(k)} {c}/{n}" if gate else f"<i>{e(k)} {c}/{n}</i>") for c, k, n, gate in row["cases"][:6])
        if len(row["cases"]) > 6:
            where += f", … {len(row['cases']) - 6} more"
        out.append(f"<tr style='border-top:1px solid #ddd'><td style='padding:3px 6px'><b>{e(row['mode'])}</b></td>"
                   f"<td style='padding:3px 6px'>{e(str(row['policy']))}</td><td style='padding:3px 6px'>{row['episodes']}"
                   f" of {row['of']}</td><td style='padding:3px 6px'>{row['episodes'] / row['of']:.1%} "
                   f"[{low:.1%}, {high:.1%}]</td><td style='padding:3px 6px'>{where}</td></tr>")
    out.append("</table>")
    return out


def _table_head(*headers: str) -> str:
    return ("<table style='border-collapse:collapse'><tr>"
            + "".join(f"<th style='text-align:left;padding:3px 6px'>{h}</th>" for h in headers) + "</tr>")
