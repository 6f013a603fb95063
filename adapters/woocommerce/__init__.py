"""WooCommerce adapter: REST v3 client, payload mapping, webhook verification, storefront port.

Only :mod:`adapters.woocommerce.client` imports the ``woocommerce`` package; everything else
works on plain dicts and hands normalized records (``connector.domain.records``) onward.
"""
