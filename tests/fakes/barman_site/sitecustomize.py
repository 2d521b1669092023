"""Test-only: points Python Barman's cloud compute clients at barman-rs's local fakes.

Barman 3.20.1 has no endpoint option for its GCP and Azure snapshot interfaces, and neither
google-cloud-compute nor azure-mgmt-compute reads an endpoint variable. Python imports this
module at start-up when its directory is on ``PYTHONPATH``; it changes only client
construction, never Barman's code, and only when the variables below are set:

``BARMAN_RS_FAKE_GCP_COMPUTE``  ``http://127.0.0.1:PORT`` of ``gcp_compute_fake.py``: the
    default ``api_endpoint`` of the four Compute clients Barman builds or that build each
    other (snapshots, disks, instances, global operations), REST transport.
``BARMAN_RS_FAKE_ARM``  ``https://127.0.0.1:PORT`` of ``azure_compute_fake.py --tls-cert``:
    the ``base_url`` of ``ComputeManagementClient`` (1 s polling), and no MSAL instance
    discovery for service principals (it would ask login.microsoftonline.com about the
    authority host). Trust the fake's CA with ``REQUESTS_CA_BUNDLE`` and set
    ``AZURE_AUTHORITY_HOST`` to the same URL.
"""

import os


def _point_gcp_compute_at(endpoint):
    from google.api_core.client_options import ClientOptions
    from google.cloud import compute_v1

    def wrap(cls):
        init = cls.__init__

        def __init__(self, *args, **kwargs):
            if kwargs.get("client_options") is None:
                kwargs["client_options"] = ClientOptions(api_endpoint=endpoint)
            kwargs.setdefault("transport", "rest")
            init(self, *args, **kwargs)

        cls.__init__ = __init__

    for name in ("SnapshotsClient", "DisksClient", "InstancesClient", "GlobalOperationsClient"):
        wrap(getattr(compute_v1, name))


def _point_azure_compute_at(base_url):
    import azure.identity
    from azure.mgmt import compute

    init = compute.ComputeManagementClient.__init__

    def client(self, credential, subscription_id, base_url_=None, **kwargs):
        kwargs.setdefault("polling_interval", 1)
        init(self, credential, subscription_id, base_url=base_url, **kwargs)

    compute.ComputeManagementClient.__init__ = client

    secret = azure.identity.ClientSecretCredential.__init__

    def principal(self, *args, **kwargs):
        kwargs.setdefault("disable_instance_discovery", True)
        secret(self, *args, **kwargs)

    azure.identity.ClientSecretCredential.__init__ = principal


if os.environ.get("BARMAN_RS_FAKE_GCP_COMPUTE"):
    _point_gcp_compute_at(os.environ["BARMAN_RS_FAKE_GCP_COMPUTE"])
if os.environ.get("BARMAN_RS_FAKE_ARM"):
    _point_azure_compute_at(os.environ["BARMAN_RS_FAKE_ARM"])
