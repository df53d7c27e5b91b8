# Types for the parts of mozilla-django-oidc that Tilgang subclasses (the package ships none).
