"""Everything sent to suppliers: PO and dropship documents, e-mails and signed webhooks."""
