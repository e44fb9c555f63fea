"""The joint risk model: success probability over the unit cube, and its AUC.

Logistic regression on features of u - 0.5 (centred so the intercept is the middle of the space
and the quadratic terms are not collinear with the linear ones): linear, squared and pairwise
products. An L2 penalty on everything but the intercept keeps coefficients finite when the
sampled points are separable (a sharp boundary and few points near it). Fitted by Newton's
method (IRLS) with step halving: no randomness, so the same data give the same coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def feature_names(d: int, names: list[str] | None = None) -> list[str]:
    """Names of the model's columns after the intercept, in `features` order."""
    names = list(names) if names else [f"u{i}" for i in range(d)]
    out = [f"{names[i]}" for i in range(d)]
    out += [f"{names[i]}^2" for i in range(d)]
    out += [f"{names[i]}*{names[j]}" for i in range(d) for j in range(i + 1, d)]
    return out


def features(U: np.ndarray) -> np.ndarray:
    """(n, 2d + d(d-1)/2) design matrix (without intercept) of centred unit-cube points."""
    Z = np.atleast_2d(np.asarray(U, dtype=float)) - 0.5
    n, d = Z.shape
    cols = [Z, Z**2]
    cross = [Z[:, i] * Z[:, j] for i in range(d) for j in range(i + 1, d)]
    if cross:
        cols.append(np.stack(cross, axis=1))
    return np.concatenate(cols, axis=1) if n else np.zeros((0, 2 * d + d * (d - 1) // 2))


L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _expit(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


@dataclass
class RiskModel:
    """p(success | u) = expit(intercept + features(u) @ coef)."""

    d: int
    intercept: float
    coef: np.ndarray
    l2: float = 1.0
    names: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, U, y, weights=None, l2: float | str = "auto", names: list[str] | None = None,
            max_iter: int = 100) -> "RiskModel":
        """Penalised maximum likelihood. `weights` count repeated rows (e.g. trials at a point).

        `y` may be bools or success fractions in [0, 1] (with weights = trials). l2="auto"
        picks the penalty from L2_GRID by 5-fold cross-validated log-loss, folds by row index
        modulo 5 (deterministic); a tie goes to the larger penalty.
        """
        U = np.atleast_2d(np.asarray(U, dtype=float))
        y = np.asarray(y, dtype=float)
        w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
        if l2 == "auto":
            l2 = cls.choose_l2(U, y, w)
        d = U.shape[1]
        X = np.concatenate([np.ones((len(y), 1)), features(U)], axis=1)
        penalty = np.full(X.shape[1], float(l2))
        penalty[0] = 0.0
        # start at the overall rate so an all-success sample converges in a step or two
        rate = (np.sum(w * y) + 0.5) / (np.sum(w) + 1.0)
        beta = np.zeros(X.shape[1])
        beta[0] = math.log(rate / (1 - rate))

        def objective(b):
            eta = X @ b
            ll = np.sum(w * (y * eta - np.logaddexp(0.0, eta)))
            return -ll + 0.5 * np.sum(penalty * b * b)

        current = objective(beta)
        for _ in range(max_iter):
            p = _expit(X @ beta)
            grad = X.T @ (w * (p - y)) + penalty * beta
            hess = (X * (w * p * (1 - p))[:, None]).T @ X + np.diag(penalty + 1e-10)
            step = np.linalg.solve(hess, grad)
            t = 1.0
            while True:
                candidate = beta - t * step
                value = objective(candidate)
                if value <= current + 1e-12 or t < 1e-8:
                    break
                t *= 0.5
            done = abs(current - value) < 1e-10 * (1 + abs(current))
            beta, current = candidate, value
            if done:
                break
        return cls(d=d, intercept=float(beta[0]), coef=beta[1:].copy(), l2=float(l2),
                   names=feature_names(d, names))

    @classmethod
    def choose_l2(cls, U, y, w, folds: int = 5) -> float:
        """The penalty in L2_GRID with the smallest cross-validated weighted log-loss."""
        if len(y) < 2 * folds:
            return 1.0
        fold = np.arange(len(y)) % folds
        losses = []
        for lam in L2_GRID:
            loss = 0.0
            for f in range(folds):
                train, test = fold != f, fold == f
                model = cls.fit(U[train], y[train], w[train], l2=lam)
                p = np.clip(model.predict(U[test]), 1e-12, 1 - 1e-12)
                loss -= np.sum(w[test] * (y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
            losses.append(loss)
        losses = np.asarray(losses)
        best = np.flatnonzero(losses <= losses.min() * (1 + 1e-9) + 1e-12)
        return float(L2_GRID[best[-1]])

    def logit(self, U) -> np.ndarray:
        return self.intercept + features(U) @ self.coef

    def predict(self, U) -> np.ndarray:
        """Predicted success probability at each row of U (unit cube)."""
        return _expit(self.logit(U))

    def to_dict(self) -> dict:
        """Plain JSON: enough for `from_dict` (and for a plot) to recompute every prediction."""
        return {"kind": "logistic-quadratic", "d": self.d, "centre": 0.5, "l2": self.l2,
                "intercept": self.intercept, "features": list(self.names),
                "coef": [float(c) for c in self.coef]}

    @classmethod
    def from_dict(cls, data: dict) -> "RiskModel":
        return cls(d=int(data["d"]), intercept=float(data["intercept"]),
                   coef=np.asarray(data["coef"], dtype=float), l2=float(data.get("l2", 1.0)),
                   names=list(data.get("features", [])))

    def boundary_1d(self, axis: int, u_other, target: float, grid: int = 513) -> float | None:
        """The smallest u along `axis` (others fixed at u_other) where p crosses target, or None.

        The logit is quadratic along one axis, so there are at most two crossings; the first one
        from u = 0 is returned (found on a grid, then refined by bisection).
        """
        from scipy.optimize import brentq

        base = np.array(u_other, dtype=float).reshape(-1)
        t = math.log(target / (1 - target))

        def g(u):
            row = base.copy()
            row[axis] = u
            return float(self.logit(row[None, :])[0]) - t

        us = np.linspace(0.0, 1.0, grid)
        rows = np.repeat(base[None, :], grid, axis=0)
        rows[:, axis] = us
        values = self.logit(rows) - t
        sign = np.sign(values)
        for i in range(grid - 1):
            if sign[i] == 0:
                return float(us[i])
            if sign[i] != sign[i + 1]:
                return float(brentq(g, us[i], us[i + 1], xtol=1e-10))
        if sign[-1] == 0:
            return 1.0
        return None


def auc(y, p) -> float | None:
    """Area under the ROC curve of scores p for the positives y (Mann-Whitney, ties count half).

    AUC = P(p of a random positive > p of a random negative) + 0.5 P(equal). None when y has
    only one class (the AUC is undefined; JSON gets null, not NaN).
    """
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(p)  # average ranks: a tie contributes one half
    u_stat = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_stat / (n_pos * n_neg))
