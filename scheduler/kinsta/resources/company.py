"""Company users (Kinsta's "Company Users")."""

from __future__ import annotations

from scheduler.kinsta import models
from scheduler.kinsta.resources.base import Resource


class _Users(models._Response):
    user: models.CompanyUser


class _UsersCompany(models._Response):
    users: list[_Users]


class _UsersBody(models._Response):
    company: _UsersCompany


class Company(Resource):
    def list_users(self, company_id: str) -> list[models.CompanyUser]:
        body = self._get(f"company/{company_id}/users", _UsersBody)
        return [entry.user for entry in body.company.users]
