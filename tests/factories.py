"""factory_boy factories for the domain models."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from orders.models import (
    Access,
    AccessRequest,
    Delegation,
    DelegationItem,
    Grant,
    GrantStatus,
    Instruction,
    Service,
)
from tenants.models import (
    ClientKey,
    Environment,
    Kommune,
    Membership,
    OAuthClient,
    Organisation,
    Product,
    Role,
)
from tenants.validators import orgnr_from
from tests.keys import rsa_public_jwk


def valid_orgnr(n: int) -> str:
    """The n-th nine-digit organisation number (from 920000000 up) with a valid check digit."""
    return orgnr_from(92000000 + n)


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"person{n}@example.test")
    email = factory.SelfAttribute("username")


class OrganisationFactory(factory.django.DjangoModelFactory[Organisation]):
    """A vendor by default; ``kind="kommune"`` takes the next free entry of the register."""

    class Meta:
        model = Organisation

    orgnr = factory.Sequence(lambda n: valid_orgnr(n * 13))
    name = factory.Sequence(lambda n: f"Organisation {n}")
    kind = Organisation.Kind.VENDOR

    @factory.lazy_attribute
    def kommune(self) -> Kommune | None:
        if self.kind != Organisation.Kind.KOMMUNE:
            return None
        return Kommune.objects.filter(organisation__isnull=True).order_by("number").first()


class KommuneOrganisationFactory(OrganisationFactory):
    kind = Organisation.Kind.KOMMUNE
    name = factory.LazyAttribute(lambda o: f"{o.kommune.name} kommune")


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    """A product NHN has verified as what it declares; ``verified_at=None`` for an unverified
    one (whose production orders wait for NHN)."""

    class Meta:
        model = Product

    vendor = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    system_type = Product.SystemType.VFT
    is_epic = False
    verified_system_type = factory.LazyAttribute(
        lambda o: o.system_type if o.verified_at is not None else ""
    )
    verified_is_epic = factory.LazyAttribute(lambda o: o.is_epic and o.verified_at is not None)
    verified_at = factory.LazyFunction(timezone.now)


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    """A bound membership; pass ``user=None`` for an open invitation."""

    class Meta:
        model = Membership

    organisation = factory.SubFactory(OrganisationFactory)
    user = factory.SubFactory(UserFactory)
    email = factory.LazyAttribute(lambda o: o.user.username if o.user else "invitee@example.test")
    role = Role.VENDOR_ADMIN
    bound_at = factory.LazyAttribute(lambda o: timezone.now() if o.user else None)

    @classmethod
    def _create(cls, model_class: type[Membership], *args: Any, **kwargs: Any) -> Membership:
        # Through the service function, so guardian permissions are in step as in production.
        from tenants.services import organisation_permissions_sync

        membership = super()._create(model_class, *args, **kwargs)
        organisation_permissions_sync(organisation=membership.organisation)
        return membership


class ClientFactory(factory.django.DjangoModelFactory[OAuthClient]):
    """A production FHIR client of a VFT product, with one public RSA key."""

    class Meta:
        model = OAuthClient
        skip_postgeneration_save = True

    product = factory.SubFactory(ProductFactory)
    vendor = factory.SelfAttribute("product.vendor")
    name = factory.Sequence(lambda n: f"Client {n}")
    environment = Environment.PRODUCTION

    @factory.post_generation
    def keys(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            ClientKey.objects.create(
                client=self, kid="key-1", kty="RSA", alg="RS256", jwk=rsa_public_jwk()
            )


class GrantFactory(factory.django.DjangoModelFactory[Grant]):
    """An active read grant of patient, with the scope the service names for its access."""

    class Meta:
        model = Grant

    client = factory.SubFactory(ClientFactory)
    kommune = factory.SubFactory(KommuneOrganisationFactory)
    service = factory.LazyFunction(lambda: Service.objects.get(code="patient"))
    access = Access.READ
    scope = factory.LazyAttribute(lambda grant: grant.service.scope_for(grant.access))
    status = GrantStatus.ACTIVE


class InstructionFactory(factory.django.DjangoModelFactory[Instruction]):
    """A signed instruction covering every service (pass ``services=[...]`` to narrow it)."""

    class Meta:
        model = Instruction
        skip_postgeneration_save = True

    kommune = factory.SubFactory(KommuneOrganisationFactory)
    # Under 1000: a page shows a version as a number, which from 1000 on is grouped ("1 008"),
    # and the suite makes over a thousand instructions.
    version = factory.Sequence(lambda n: n % 900 + 1)
    subject_matter = "Velferdsteknologi og pasientdata"
    duration = "Til avtalen sies opp"
    nature_and_purpose = "Innsamling og tilgjengeliggjøring av helsedata"
    personal_data_categories = ["helseopplysninger"]
    data_subject_categories = ["pasienter"]
    retention = "Så lenge tjenesten ytes"
    contact_name = "Kari Nordmann"
    contact_email = "kari@kommune.example"
    signed_by = factory.SubFactory(UserFactory)
    signed_by_name = "Kari Nordmann"
    signed_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def services(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            self.services.set(extracted if extracted is not None else Service.objects.all())


class DelegationFactory(factory.django.DjangoModelFactory[Delegation]):
    """A delegation in force covering every service for read and write, without service codes.

    Pass ``services=[...]`` to narrow it to those services (read and write), or
    ``items=[(service, access, codes), ...]`` for exact items.
    """

    class Meta:
        model = Delegation
        skip_postgeneration_save = True

    kommune = factory.SubFactory(KommuneOrganisationFactory)
    vendor = factory.SubFactory(OrganisationFactory)
    valid_from = factory.LazyFunction(timezone.localdate)

    @factory.post_generation
    def services(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted is not None:
            delegation_items_set(self, [(s, a, ()) for s in extracted for a in Access.values])

    @factory.post_generation
    def items(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create or self.items.exists():
            return
        if extracted is None:
            extracted = [(s, a, ()) for s in Service.objects.all() for a in Access.values]
        delegation_items_set(self, extracted)


def delegation_items_set(delegation: Delegation, items: Any) -> None:
    """Replace the delegation's items by ``(service, access, service_codes)`` triples."""
    DelegationItem.objects.filter(delegation=delegation).delete()
    DelegationItem.objects.bulk_create(
        DelegationItem(delegation=delegation, service=s, access=a, service_codes=list(codes))
        for s, a, codes in items
    )


def revoke_reason(grant: Grant) -> str:
    """The grant's revocation reason as a reader in the active language sees it."""
    from orders.policy import grant_reason_text

    return grant_reason_text(
        grant.revoke_reason_code, grant.revoke_reason_params, grant.revoke_reason
    )


def order_place(
    *,
    client: OAuthClient,
    kommune: Organisation,
    actor: User,
    items: str,
    initiated_by: str = AccessRequest.Initiator.VENDOR,
    service_codes: tuple[str, ...] = (),
) -> AccessRequest:
    """An order for ``client`` in ``kommune`` of ``items``, e.g. "patient.write,condition.read"."""
    from orders import services

    [request] = services.access_request_create(
        client=client,
        kommuner=[kommune],
        items=[
            services.ItemInput(
                service=Service.objects.get(code=code),
                access=access,
                service_codes=service_codes,
            )
            for code, access in (item.split(".") for item in items.split(","))
        ],
        initiated_by=initiated_by,
        actor=actor,
    )
    return request


def vendor_order(
    *, client: OAuthClient, kommune: Organisation, actor: User, items: str
) -> list[Grant]:
    """A vendor's order (see ``order_place``); its grants in the order asked."""
    request = order_place(client=client, kommune=kommune, actor=actor, items=items)
    grants = [
        request.items.get(service__code=item.split(".")[0]).grant for item in items.split(",")
    ]
    assert all(grant is not None for grant in grants), grants
    return [grant for grant in grants if grant is not None]


def fresh_id_token(*, auth_time: float | None = None, **claims: Any) -> str:
    """An ID token as the login callback keeps it in the session (verified there, so not signed
    with the provider's key here); ``auth_time`` says when the person logged in at the provider."""
    import jwt

    payload: dict[str, Any] = {"sub": "admin@oslo.example", **claims}
    if auth_time is not None:
        payload["auth_time"] = int(auth_time)
    return jwt.encode(payload, "test-only-key-of-at-least-32-bytes", algorithm="HS256")


def api_session(user: Any, *, logged_in_ago: float | None = 0.0) -> Any:
    """An API client with ``user``'s browser session, whose last login at the provider was
    ``logged_in_ago`` seconds ago (None: no login time known, as after a silent renewal)."""
    import time

    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(user)
    if logged_in_ago is not None:
        session = api.session
        session["oidc_id_token"] = fresh_id_token(auth_time=time.time() - logged_in_ago)
        session.save()
    return api


def automation_client_post(
    admin: Any, orgnr: str, role: str, *, kid: str = "pipeline-1", seed: int = 2
) -> dict[str, Any]:
    """An automation client of the organisation ``orgnr`` holding ``role``, registered by its
    admin through the API (its public key: ``rsa_public_jwk(kid, seed=seed)``); the API's
    answer."""
    from rest_framework.test import APIClient

    from tests.keys import jwks

    api = APIClient()
    api.force_authenticate(admin)
    response = api.post(
        "/api/v1/clients/",
        {
            "name": "Pipeline",
            "purpose": "portal_api",
            "organisation": orgnr,
            "role": role,
            "jwks": jwks(rsa_public_jwk(kid, seed=seed)),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return dict(response.json())
