//! `douane geodb import`: CSV ranges (`first_ip,last_ip,asn,organisation`) into an `.mmdb`.
