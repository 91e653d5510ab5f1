"""KinstaClient: Kinsta's REST API v2 for WordPress hosting, one typed method per endpoint.

The endpoints are grouped as Kinsta's API reference groups them, each group a small class sharing
the client's one session (httpx client, rate governor, retries):

    client.validate()              GET /validate: the key's company
    client.get_operation(id)       GET /operations/{id}: one poll
    client.company                 company users                       resources/company.py
    client.sites                   sites: list, get, create, clone, delete   resources/sites.py
    client.environments            a site's environments, push         resources/environments.py
    client.tools                   caches (site, edge, CDN), PHP, IP deny list   resources/tools.py
    client.plugins, client.themes  list, update, bulk update           resources/wordpress.py
    client.domains                 an environment's domains            resources/domains.py
    client.backups                 list, create, restore, delete       resources/backups.py
    client.logs                    error, access and cache logs        resources/logs.py

Actions that Kinsta runs asynchronously return OperationAccepted (an `operation_id` in any 2xx
body means asynchronous, whatever the status code); poll them with get_operation or
operations.wait_for_operation. Paths and bodies follow openapi.json v1.87.0 exactly.
"""

from __future__ import annotations

from functools import cached_property

from scheduler.domain import OperationState
from scheduler.errors import ResponseFormatError
from scheduler.kinsta import models
from scheduler.kinsta.resources import (
    Backups,
    Company,
    Domains,
    Environments,
    Logs,
    Sites,
    Tools,
    WpItems,
)
from scheduler.kinsta.session import (
    SENT_AT,
    WAITED_S,
    ApiSession,
    OperationAccepted,
    OperationStatus,
    read_model,
)

__all__ = ["KinstaClient", "OperationAccepted", "OperationStatus"]


class KinstaClient(ApiSession):
    # --- the endpoint groups ----------------------------------------------------------------

    @cached_property
    def company(self) -> Company:
        return Company(self)

    @cached_property
    def sites(self) -> Sites:
        return Sites(self)

    @cached_property
    def environments(self) -> Environments:
        return Environments(self)

    @cached_property
    def tools(self) -> Tools:
        return Tools(self)

    @cached_property
    def plugins(self) -> WpItems:
        return WpItems(self, "plugins")

    @cached_property
    def themes(self) -> WpItems:
        return WpItems(self, "themes")

    @cached_property
    def domains(self) -> Domains:
        return Domains(self)

    @cached_property
    def backups(self) -> Backups:
        return Backups(self)

    @cached_property
    def logs(self) -> Logs:
        return Logs(self)

    # --- authentication, operations ---------------------------------------------------------

    def validate(self) -> models.ApiKeyInfo:
        return read_model(self.request("GET", "validate"), models.ApiKeyInfo)

    def get_operation(self, operation_id: str) -> OperationStatus:
        """One poll. 200 done, 202 running, 404 not (yet) known, 500 failed; the body's own
        `status` wins over the HTTP code when both are present (some report failure in a 200).
        A 404 or 500 whose body is not Kinsta's JSON is no answer: KinstaAPIError. One answer
        saying failed is not final: operations.wait_for_operation confirms it."""
        path = f"operations/{operation_id}"
        response = self.request("GET", path, accept=(404, 500))
        try:
            body = read_model(response, models.StatusBody)
        except ResponseFormatError as exc:
            if response.is_success:
                raise
            # Not Kinsta's answer about the operation (a proxy's error page): no answer at all.
            raise self._api_error(response, "GET", "/" + path) from exc
        code = int(body.status) if body.status is not None else response.status_code
        state = {
            200: OperationState.SUCCEEDED,
            202: OperationState.IN_PROGRESS,
            404: OperationState.PENDING,
        }.get(code, OperationState.FAILED if code >= 400 else OperationState.IN_PROGRESS)
        sent_at = response.extensions.get(SENT_AT)
        waited = float(response.extensions.get(WAITED_S, 0.0))
        return OperationStatus(
            state, response.status_code, body.message, body.data, sent_at, waited
        )
