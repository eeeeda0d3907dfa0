"""The synthetic API estate the generator imitates: services, their routes, clients.

Static on purpose: the seed varies the traffic, not the estate, so dashboards and tests can
name a service or route and find it in every run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    median_latency_ms: float
    latency_sigma: float  # of the log-normal; heavier tails for fan-out routes
    median_bytes: int
    success_status: int = 200


@dataclass(frozen=True)
class Service:
    name: str
    weight: float  # share of all traffic
    p4xx: float
    p5xx: float
    anonymous: float  # share of requests without a user id
    hosts: int
    routes: tuple[Route, ...]  # most popular first: popularity is Zipf over this order


SERVICES: tuple[Service, ...] = (
    Service("search", 0.28, 0.02, 0.004, 0.35, 6, (
        Route("GET", "/v1/search", 45, 0.8, 8_000),
        Route("GET", "/v1/search/suggest", 12, 0.5, 900),
        Route("GET", "/v1/search/facets", 30, 0.7, 3_000),
        Route("POST", "/v1/search/feedback", 8, 0.4, 60, 204),
    )),
    Service("catalog", 0.24, 0.03, 0.002, 0.30, 4, (
        Route("GET", "/v1/products/{id}", 18, 0.5, 4_500),
        Route("GET", "/v1/products", 35, 0.6, 22_000),
        Route("GET", "/v1/categories/{id}/products", 40, 0.6, 18_000),
        Route("GET", "/v1/categories", 10, 0.4, 2_500),
        Route("GET", "/v1/products/{id}/reviews", 28, 0.7, 9_000),
        Route("PUT", "/v1/products/{id}", 60, 0.5, 300),
    )),
    Service("auth", 0.15, 0.09, 0.003, 0.60, 3, (
        Route("POST", "/v1/token/refresh", 15, 0.4, 700),
        Route("POST", "/v1/login", 120, 0.5, 800),
        Route("GET", "/v1/me", 6, 0.4, 450),
        Route("POST", "/v1/logout", 5, 0.3, 0, 204),
        Route("POST", "/v1/password/reset", 90, 0.6, 120, 202),
    )),
    Service("profile", 0.12, 0.03, 0.005, 0.05, 2, (
        Route("GET", "/v1/users/{id}", 14, 0.5, 1_200),
        Route("GET", "/v1/users/{id}/preferences", 9, 0.4, 600),
        Route("PATCH", "/v1/users/{id}", 35, 0.5, 1_100),
        Route("GET", "/v1/users/{id}/addresses", 16, 0.5, 900),
        Route("DELETE", "/v1/users/{id}/addresses/{address_id}", 25, 0.4, 0, 204),
    )),
    Service("checkout", 0.13, 0.04, 0.012, 0.05, 4, (
        Route("GET", "/v1/cart", 22, 0.5, 2_000),
        Route("POST", "/v1/cart/items", 40, 0.5, 2_100, 201),
        Route("DELETE", "/v1/cart/items/{item_id}", 30, 0.5, 0, 204),
        Route("POST", "/v1/orders", 250, 0.7, 1_800, 201),
        Route("GET", "/v1/orders/{id}", 25, 0.5, 2_400),
        Route("GET", "/v1/orders", 60, 0.6, 12_000),
    )),
    Service("payments", 0.08, 0.05, 0.02, 0.02, 3, (
        Route("POST", "/v1/payments", 420, 0.6, 900, 201),
        Route("GET", "/v1/payments/{id}", 30, 0.5, 800),
        Route("POST", "/v1/payments/{id}/capture", 380, 0.6, 700),
        Route("POST", "/v1/refunds", 350, 0.6, 650, 201),
    )),
)

# (status, weight) within an error class; 401 is common because tokens expire.
STATUS_4XX: tuple[tuple[int, float], ...] = (
    (400, 0.22), (401, 0.25), (403, 0.08), (404, 0.30), (409, 0.05), (422, 0.06), (429, 0.04),
)
STATUS_5XX: tuple[tuple[int, float], ...] = ((500, 0.5), (502, 0.2), (503, 0.2), (504, 0.1))
# Share of GET requests answered 304 Not Modified by caches.
P_NOT_MODIFIED = 0.02

# (user agent, weight). Signed-in users keep one client agent; anonymous requests sample
# clients and bots together, which is where crawlers and scripts show up.
CLIENT_AGENTS: tuple[tuple[str, float], ...] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", 0.30),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", 0.12),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 0.15),
    ("Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.6778.81 Mobile Safari/537.36", 0.12),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 0.05),
    ("lae-shop-ios/5.12.0 (iPhone15,2; iOS 18.1; Scale/3.00)", 0.09),
    ("okhttp/4.12.0", 0.07),
)
BOT_AGENTS: tuple[tuple[str, float], ...] = (
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.04),
    ("curl/8.11.0", 0.02),
    ("python-requests/2.32.3", 0.03),
    ("Go-http-client/2.0", 0.01),
)

# Share of signed-in users seen over IPv6.
P_IPV6 = 0.15
