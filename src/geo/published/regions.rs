//! Each provider's region names mapped to the country the region is in, from the providers'
//! own public region lists:
//!
//! - AWS: <https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html>
//! - Google Cloud: <https://cloud.google.com/about/locations> and
//!   <https://cloud.google.com/compute/docs/regions-zones>
//! - Azure: <https://learn.microsoft.com/azure/reliability/regions-list> (the short names of
//!   the service tags file, `properties.region`)
//! - Oracle Cloud: <https://docs.oracle.com/iaas/Content/General/Concepts/regions.htm>
//!
//! A region that is in no table (a new one, or one these lists do not document) claims no
//! country: the country database then places the address, and `douane ranges import` lists
//! the unmapped regions so that the table can be completed.

use crate::country::Country;

/// `(region, country)` pairs of one provider.
pub type RegionTable = &'static [(&'static str, &'static str)];

pub const AWS: RegionTable = &[
    ("af-south-1", "ZA"),
    ("ap-east-1", "HK"),
    ("ap-east-2", "TW"),
    ("ap-northeast-1", "JP"),
    ("ap-northeast-2", "KR"),
    ("ap-northeast-3", "JP"),
    ("ap-south-1", "IN"),
    ("ap-south-2", "IN"),
    ("ap-southeast-1", "SG"),
    ("ap-southeast-2", "AU"),
    ("ap-southeast-3", "ID"),
    ("ap-southeast-4", "AU"),
    ("ap-southeast-5", "MY"),
    ("ap-southeast-6", "NZ"),
    ("ap-southeast-7", "TH"),
    ("ca-central-1", "CA"),
    ("ca-west-1", "CA"),
    ("cn-north-1", "CN"),
    ("cn-northwest-1", "CN"),
    ("eu-central-1", "DE"),
    ("eu-central-2", "CH"),
    ("eu-north-1", "SE"),
    ("eu-south-1", "IT"),
    ("eu-south-2", "ES"),
    ("eu-west-1", "IE"),
    ("eu-west-2", "GB"),
    ("eu-west-3", "FR"),
    ("eusc-de-east-1", "DE"),
    ("il-central-1", "IL"),
    ("me-central-1", "AE"),
    ("me-south-1", "BH"),
    ("mx-central-1", "MX"),
    ("sa-east-1", "BR"),
    ("us-east-1", "US"),
    ("us-east-2", "US"),
    ("us-gov-east-1", "US"),
    ("us-gov-west-1", "US"),
    ("us-west-1", "US"),
    ("us-west-2", "US"),
];

pub const GOOGLE: RegionTable = &[
    ("africa-south1", "ZA"),
    ("asia-east1", "TW"),
    ("asia-east2", "HK"),
    ("asia-northeast1", "JP"),
    ("asia-northeast2", "JP"),
    ("asia-northeast3", "KR"),
    ("asia-south1", "IN"),
    ("asia-south2", "IN"),
    ("asia-southeast1", "SG"),
    ("asia-southeast2", "ID"),
    ("australia-southeast1", "AU"),
    ("australia-southeast2", "AU"),
    ("europe-central2", "PL"),
    ("europe-north1", "FI"),
    ("europe-north2", "SE"),
    ("europe-southwest1", "ES"),
    ("europe-west1", "BE"),
    ("europe-west2", "GB"),
    ("europe-west3", "DE"),
    ("europe-west4", "NL"),
    ("europe-west6", "CH"),
    ("europe-west8", "IT"),
    ("europe-west9", "FR"),
    ("europe-west10", "DE"),
    ("europe-west12", "IT"),
    ("me-central1", "QA"),
    ("me-central2", "SA"),
    ("me-west1", "IL"),
    ("northamerica-northeast1", "CA"),
    ("northamerica-northeast2", "CA"),
    ("northamerica-south1", "MX"),
    ("southamerica-east1", "BR"),
    ("southamerica-west1", "CL"),
    ("us-central1", "US"),
    ("us-central2", "US"),
    ("us-east1", "US"),
    ("us-east4", "US"),
    ("us-east5", "US"),
    ("us-east7", "US"),
    ("us-south1", "US"),
    ("us-west1", "US"),
    ("us-west2", "US"),
    ("us-west3", "US"),
    ("us-west4", "US"),
    ("us-west8", "US"),
];

pub const AZURE: RegionTable = &[
    ("australiacentral", "AU"),
    ("australiacentral2", "AU"),
    ("australiaeast", "AU"),
    ("australiasoutheast", "AU"),
    ("austriaeast", "AT"),
    ("brazilne", "BR"),
    ("brazilse", "BR"),
    ("brazilsouth", "BR"),
    ("canadacentral", "CA"),
    ("canadaeast", "CA"),
    ("centralfrance", "FR"),
    ("centralindia", "IN"),
    ("centralus", "US"),
    ("centraluseuap", "US"),
    ("chilec", "CL"),
    ("eastasia", "HK"),
    ("eastus", "US"),
    ("eastus2", "US"),
    ("eastus2euap", "US"),
    ("germanyn", "DE"),
    ("germanywc", "DE"),
    ("indonesiacentral", "ID"),
    ("israelcentral", "IL"),
    ("israelnorthwest", "IL"),
    ("italynorth", "IT"),
    ("japaneast", "JP"),
    ("japanwest", "JP"),
    ("jioindiacentral", "IN"),
    ("jioindiawest", "IN"),
    ("koreacentral", "KR"),
    ("koreasouth", "KR"),
    ("malaysiasouth", "MY"),
    ("malaysiawest", "MY"),
    ("mexicocentral", "MX"),
    ("newzealandnorth", "NZ"),
    ("northcentralus", "US"),
    ("northeurope", "IE"),
    ("norwaye", "NO"),
    ("norwayw", "NO"),
    ("polandcentral", "PL"),
    ("qatarcentral", "QA"),
    ("southafricanorth", "ZA"),
    ("southafricawest", "ZA"),
    ("southcentralus", "US"),
    ("southcentralus2", "US"),
    ("southeastasia", "SG"),
    ("southeastus", "US"),
    ("southfrance", "FR"),
    ("southindia", "IN"),
    ("spaincentral", "ES"),
    ("swedencentral", "SE"),
    ("swedensouth", "SE"),
    ("switzerlandn", "CH"),
    ("switzerlandw", "CH"),
    ("taiwannorth", "TW"),
    ("taiwannorthwest", "TW"),
    ("uaecentral", "AE"),
    ("uaenorth", "AE"),
    ("uksouth", "GB"),
    ("ukwest", "GB"),
    ("usstagec", "US"),
    ("usstagee", "US"),
    ("westcentralus", "US"),
    ("westeurope", "NL"),
    ("westindia", "IN"),
    ("westus", "US"),
    ("westus2", "US"),
    ("westus3", "US"),
];

pub const ORACLE: RegionTable = &[
    ("af-johannesburg-1", "ZA"),
    ("ap-batam-1", "ID"),
    ("ap-chuncheon-1", "KR"),
    ("ap-hyderabad-1", "IN"),
    ("ap-melbourne-1", "AU"),
    ("ap-mumbai-1", "IN"),
    ("ap-osaka-1", "JP"),
    ("ap-seoul-1", "KR"),
    ("ap-singapore-1", "SG"),
    ("ap-singapore-2", "SG"),
    ("ap-sydney-1", "AU"),
    ("ap-tokyo-1", "JP"),
    ("ca-montreal-1", "CA"),
    ("ca-toronto-1", "CA"),
    ("eu-amsterdam-1", "NL"),
    ("eu-frankfurt-1", "DE"),
    ("eu-jovanovac-1", "RS"),
    ("eu-madrid-1", "ES"),
    ("eu-marseille-1", "FR"),
    ("eu-milan-1", "IT"),
    ("eu-paris-1", "FR"),
    ("eu-stockholm-1", "SE"),
    ("eu-zurich-1", "CH"),
    ("il-jerusalem-1", "IL"),
    ("me-abudhabi-1", "AE"),
    ("me-dubai-1", "AE"),
    ("me-jeddah-1", "SA"),
    ("me-riyadh-1", "SA"),
    ("mx-monterrey-1", "MX"),
    ("mx-queretaro-1", "MX"),
    ("sa-bogota-1", "CO"),
    ("sa-santiago-1", "CL"),
    ("sa-saopaulo-1", "BR"),
    ("sa-valparaiso-1", "CL"),
    ("sa-vinhedo-1", "BR"),
    ("uk-cardiff-1", "GB"),
    ("uk-london-1", "GB"),
    ("us-abilene-1", "US"),
    ("us-ashburn-1", "US"),
    ("us-boardman-1", "US"),
    ("us-chicago-1", "US"),
    ("us-dallas-1", "US"),
    ("us-phoenix-1", "US"),
    ("us-saltlake-2", "US"),
    ("us-sanjose-1", "US"),
];

/// The country of a region in a table, if the table has it.
pub fn country_of(table: RegionTable, region: &str) -> Option<Country> {
    table
        .iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(region))
        .and_then(|(_, c)| Country::parse(c).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_entry_is_an_assigned_country() {
        for table in [AWS, GOOGLE, AZURE, ORACLE] {
            for (region, code) in table {
                assert!(Country::parse(code).is_ok(), "{region} → {code}");
            }
        }
        assert_eq!(country_of(AWS, "eu-west-3").unwrap().as_str(), "FR");
        assert_eq!(country_of(AZURE, "eastasia").unwrap().as_str(), "HK");
        assert!(country_of(AWS, "GLOBAL").is_none());
    }
}
