//! Country names in French and English, for people: the block page, the DPO's report and
//! the SaaS inventory say "soumis au droit des États-Unis", never a bare `US`.
//!
//! The table comes from Debian's iso-codes (ISO 3166-1 and its French translation), with
//! the common short name where ISO gives a formal one ("Corée du Sud", not "Corée,
//! République de"); the French "de" form carries the article ("des États-Unis", "de
//! l’Irlande", "du Japon", "de Singapour").

use std::fmt;
use std::str::FromStr;

use crate::country::Country;

/// The language of a page or a report meant for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// Picks the French or the English text.
    pub fn pick<'a>(self, fr: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fr" => Ok(Lang::Fr),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown language `{other}`: give fr or en")),
        }
    }
}

fn entry(
    c: Country,
) -> Option<&'static (&'static str, &'static str, &'static str, &'static str, bool)> {
    NAMES
        .binary_search_by(|e| e.0.cmp(c.as_str()))
        .ok()
        .map(|i| &NAMES[i])
}

/// The country's name ("États-Unis", "United States"); `?` for a code the table lacks (a
/// test checks that every assigned code is in it).
pub fn name(c: Country, lang: Lang) -> &'static str {
    match entry(c) {
        Some(e) => lang.pick(e.1, e.3),
        None => "?",
    }
}

/// The name as it follows "soumis au droit" / "under the law of": "des États-Unis",
/// "the United States", "de l’Irlande", "Ireland".
pub fn law_of(c: Country, lang: Lang) -> String {
    match (entry(c), lang) {
        (Some(e), Lang::Fr) => e.2.to_owned(),
        (Some(e), Lang::En) if e.4 => format!("the {}", e.3),
        (Some(e), Lang::En) => e.3.to_owned(),
        (None, Lang::Fr) => format!("du pays {c}"),
        (None, Lang::En) => c.to_string(),
    }
}

/// Where, as it follows a verb: "en France", "aux États-Unis", "au Japon", "à Singapour";
/// "in France", "in the United States".
pub fn in_country(c: Country, lang: Lang) -> String {
    if lang == Lang::En {
        return format!("in {}", law_of(c, lang));
    }
    let of = law_of(c, lang);
    if let Some(rest) = of.strip_prefix("des ") {
        format!("aux {rest}")
    } else if let Some(rest) = of.strip_prefix("du ") {
        format!("au {rest}")
    } else if let Some(rest) = of.strip_prefix("de la ") {
        format!("en {rest}")
    } else if let Some(rest) = of.strip_prefix("de l’") {
        format!("en {rest}")
    } else if let Some(rest) = of.strip_prefix("d’") {
        format!("à {rest}")
    } else if let Some(rest) = of.strip_prefix("de ") {
        format!("à {rest}")
    } else {
        of
    }
}

// Generated from Debian iso-codes (ISO 3166-1, English names and the French translation),
// with common short names where ISO gives a formal one. Sorted by code.
// (code, French name, French "de" form, English name, English name takes "the")
pub(crate) const NAMES: &[(&str, &str, &str, &str, bool)] = &[
    ("AD", "Andorre", "de l’Andorre", "Andorra", false),
    (
        "AE",
        "Émirats arabes unis",
        "des Émirats arabes unis",
        "United Arab Emirates",
        true,
    ),
    (
        "AF",
        "Afghanistan",
        "de l’Afghanistan",
        "Afghanistan",
        false,
    ),
    (
        "AG",
        "Antigua-et-Barbuda",
        "d’Antigua-et-Barbuda",
        "Antigua and Barbuda",
        false,
    ),
    ("AI", "Anguilla", "d’Anguilla", "Anguilla", false),
    ("AL", "Albanie", "de l’Albanie", "Albania", false),
    ("AM", "Arménie", "de l’Arménie", "Armenia", false),
    ("AO", "Angola", "de l’Angola", "Angola", false),
    ("AQ", "Antarctique", "d’Antarctique", "Antarctica", false),
    ("AR", "Argentine", "de l’Argentine", "Argentina", false),
    (
        "AS",
        "Samoa américaines",
        "de Samoa américaines",
        "American Samoa",
        false,
    ),
    ("AT", "Autriche", "de l’Autriche", "Austria", false),
    ("AU", "Australie", "de l’Australie", "Australia", false),
    ("AW", "Aruba", "d’Aruba", "Aruba", false),
    ("AX", "Åland", "des Åland", "Åland Islands", true),
    ("AZ", "Azerbaïdjan", "de l’Azerbaïdjan", "Azerbaijan", false),
    (
        "BA",
        "Bosnie-Herzégovine",
        "de la Bosnie-Herzégovine",
        "Bosnia and Herzegovina",
        false,
    ),
    ("BB", "Barbade", "de Barbade", "Barbados", false),
    ("BD", "Bangladesh", "du Bangladesh", "Bangladesh", false),
    ("BE", "Belgique", "de la Belgique", "Belgium", false),
    (
        "BF",
        "Burkina Faso",
        "du Burkina Faso",
        "Burkina Faso",
        false,
    ),
    ("BG", "Bulgarie", "de la Bulgarie", "Bulgaria", false),
    ("BH", "Bahreïn", "de Bahreïn", "Bahrain", false),
    ("BI", "Burundi", "du Burundi", "Burundi", false),
    ("BJ", "Bénin", "du Bénin", "Benin", false),
    (
        "BL",
        "Saint-Barthélemy",
        "de Saint-Barthélemy",
        "Saint Barthélemy",
        false,
    ),
    ("BM", "Bermudes", "de Bermudes", "Bermuda", false),
    (
        "BN",
        "Brunéi Darussalam",
        "de Brunéi Darussalam",
        "Brunei Darussalam",
        false,
    ),
    ("BO", "Bolivie", "de la Bolivie", "Bolivia", false),
    (
        "BQ",
        "Bonaire, Saint-Eustache et Saba",
        "de Bonaire, Saint-Eustache et Saba",
        "Bonaire, Sint Eustatius and Saba",
        false,
    ),
    ("BR", "Brésil", "du Brésil", "Brazil", false),
    ("BS", "Bahamas", "des Bahamas", "Bahamas", true),
    ("BT", "Bhoutan", "du Bhoutan", "Bhutan", false),
    ("BV", "île Bouvet", "des île Bouvet", "Bouvet Island", false),
    ("BW", "Botswana", "du Botswana", "Botswana", false),
    ("BY", "Bélarus", "du Bélarus", "Belarus", false),
    ("BZ", "Belize", "du Belize", "Belize", false),
    ("CA", "Canada", "du Canada", "Canada", false),
    (
        "CC",
        "Cocos (Keeling)",
        "des Cocos (Keeling)",
        "Cocos (Keeling) Islands",
        true,
    ),
    (
        "CD",
        "République démocratique du Congo",
        "de la République démocratique du Congo",
        "Democratic Republic of the Congo",
        true,
    ),
    (
        "CF",
        "République centrafricaine",
        "de la République centrafricaine",
        "Central African Republic",
        true,
    ),
    ("CG", "Congo", "du Congo", "Republic of the Congo", true),
    ("CH", "Suisse", "de la Suisse", "Switzerland", false),
    (
        "CI",
        "Côte d'Ivoire",
        "de la Côte d’Ivoire",
        "Côte d'Ivoire",
        false,
    ),
    ("CK", "îles Cook", "des îles Cook", "Cook Islands", true),
    ("CL", "Chili", "du Chili", "Chile", false),
    ("CM", "Cameroun", "du Cameroun", "Cameroon", false),
    ("CN", "Chine", "de la Chine", "China", false),
    ("CO", "Colombie", "de la Colombie", "Colombia", false),
    ("CR", "Costa Rica", "du Costa Rica", "Costa Rica", false),
    ("CU", "Cuba", "de Cuba", "Cuba", false),
    ("CV", "Cap-Vert", "de Cap-Vert", "Cabo Verde", false),
    ("CW", "Curaçao", "de Curaçao", "Curaçao", false),
    ("CX", "Christmas", "des Christmas", "Christmas Island", true),
    ("CY", "Chypre", "de Chypre", "Cyprus", false),
    ("CZ", "Tchéquie", "de la Tchéquie", "Czechia", false),
    ("DE", "Allemagne", "de l’Allemagne", "Germany", false),
    ("DJ", "Djibouti", "de Djibouti", "Djibouti", false),
    ("DK", "Danemark", "du Danemark", "Denmark", false),
    ("DM", "Dominique", "de Dominique", "Dominica", false),
    (
        "DO",
        "République dominicaine",
        "de la République dominicaine",
        "Dominican Republic",
        true,
    ),
    ("DZ", "Algérie", "de l’Algérie", "Algeria", false),
    ("EC", "Équateur", "de l’Équateur", "Ecuador", false),
    ("EE", "Estonie", "de l’Estonie", "Estonia", false),
    ("EG", "Égypte", "de l’Égypte", "Egypt", false),
    (
        "EH",
        "Sahara occidental",
        "du Sahara occidental",
        "Western Sahara",
        false,
    ),
    ("ER", "Érythrée", "de l’Érythrée", "Eritrea", false),
    ("ES", "Espagne", "de l’Espagne", "Spain", false),
    ("ET", "Éthiopie", "de l’Éthiopie", "Ethiopia", false),
    ("FI", "Finlande", "de la Finlande", "Finland", false),
    ("FJ", "Fidji", "des Fidji", "Fiji", false),
    (
        "FK",
        "Malouines",
        "des Malouines",
        "Falkland Islands (Malvinas)",
        true,
    ),
    ("FM", "Micronésie", "de la Micronésie", "Micronesia", false),
    ("FO", "îles Féroé", "des îles Féroé", "Faroe Islands", true),
    ("FR", "France", "de la France", "France", false),
    ("GA", "Gabon", "du Gabon", "Gabon", false),
    (
        "GB",
        "Royaume-Uni",
        "du Royaume-Uni",
        "United Kingdom",
        true,
    ),
    ("GD", "Grenade", "de Grenade", "Grenada", false),
    ("GE", "Géorgie", "de la Géorgie", "Georgia", false),
    (
        "GF",
        "Guyane française",
        "de la Guyane française",
        "French Guiana",
        false,
    ),
    ("GG", "Guernesey", "de Guernesey", "Guernsey", false),
    ("GH", "Ghana", "du Ghana", "Ghana", false),
    ("GI", "Gibraltar", "de Gibraltar", "Gibraltar", false),
    ("GL", "Groënland", "du Groënland", "Greenland", false),
    ("GM", "Gambie", "de la Gambie", "Gambia", true),
    ("GN", "Guinée", "de la Guinée", "Guinea", false),
    ("GP", "Guadeloupe", "de Guadeloupe", "Guadeloupe", false),
    (
        "GQ",
        "Guinée Équatoriale",
        "de la Guinée Équatoriale",
        "Equatorial Guinea",
        false,
    ),
    ("GR", "Grèce", "de la Grèce", "Greece", false),
    (
        "GS",
        "Géorgie du Sud et les îles Sandwich du Sud",
        "des Géorgie du Sud et les îles Sandwich du Sud",
        "South Georgia and the South Sandwich Islands",
        true,
    ),
    ("GT", "Guatemala", "du Guatemala", "Guatemala", false),
    ("GU", "Guam", "de Guam", "Guam", false),
    (
        "GW",
        "Guinée-Bissau",
        "du Guinée-Bissau",
        "Guinea-Bissau",
        false,
    ),
    ("GY", "Guyana", "du Guyana", "Guyana", false),
    ("HK", "Hong Kong", "de Hong Kong", "Hong Kong", false),
    (
        "HM",
        "îles Heard-et-MacDonald",
        "des îles Heard-et-MacDonald",
        "Heard Island and McDonald Islands",
        true,
    ),
    ("HN", "Honduras", "du Honduras", "Honduras", false),
    ("HR", "Croatie", "de la Croatie", "Croatia", false),
    ("HT", "Haïti", "de Haïti", "Haiti", false),
    ("HU", "Hongrie", "de la Hongrie", "Hungary", false),
    ("ID", "Indonésie", "de l’Indonésie", "Indonesia", false),
    ("IE", "Irlande", "de l’Irlande", "Ireland", false),
    ("IL", "Israël", "d’Israël", "Israel", false),
    ("IM", "Île de Man", "de l’Île de Man", "Isle of Man", false),
    ("IN", "Inde", "de l’Inde", "India", false),
    (
        "IO",
        "Territoire britannique de l'océan Indien",
        "des Territoire britannique de l'océan Indien",
        "British Indian Ocean Territory",
        true,
    ),
    ("IQ", "Irak", "de l’Irak", "Iraq", false),
    ("IR", "Iran", "de l’Iran", "Iran", false),
    ("IS", "Islande", "d’Islande", "Iceland", false),
    ("IT", "Italie", "de l’Italie", "Italy", false),
    ("JE", "Jersey", "de Jersey", "Jersey", false),
    ("JM", "Jamaïque", "de Jamaïque", "Jamaica", false),
    ("JO", "Jordanie", "de la Jordanie", "Jordan", false),
    ("JP", "Japon", "du Japon", "Japan", false),
    ("KE", "Kenya", "du Kenya", "Kenya", false),
    ("KG", "Kirghizistan", "du Kirghizistan", "Kyrgyzstan", false),
    ("KH", "Cambodge", "du Cambodge", "Cambodia", false),
    ("KI", "Kiribati", "de Kiribati", "Kiribati", false),
    ("KM", "Comores", "des Comores", "Comoros", true),
    (
        "KN",
        "Saint-Christophe-et-Niévès",
        "de Saint-Christophe-et-Niévès",
        "Saint Kitts and Nevis",
        false,
    ),
    (
        "KP",
        "Corée du Nord",
        "de la Corée du Nord",
        "North Korea",
        false,
    ),
    (
        "KR",
        "Corée du Sud",
        "de la Corée du Sud",
        "South Korea",
        false,
    ),
    ("KW", "Koweït", "du Koweït", "Kuwait", false),
    (
        "KY",
        "îles Caïmans",
        "des îles Caïmans",
        "Cayman Islands",
        true,
    ),
    ("KZ", "Kazakhstan", "du Kazakhstan", "Kazakhstan", false),
    ("LA", "Laos", "du Laos", "Laos", false),
    ("LB", "Liban", "du Liban", "Lebanon", false),
    (
        "LC",
        "Sainte-Lucie",
        "de Sainte-Lucie",
        "Saint Lucia",
        false,
    ),
    (
        "LI",
        "Liechtenstein",
        "de Liechtenstein",
        "Liechtenstein",
        false,
    ),
    ("LK", "Sri Lanka", "du Sri Lanka", "Sri Lanka", false),
    ("LR", "Libéria", "du Libéria", "Liberia", false),
    ("LS", "Lesotho", "du Lesotho", "Lesotho", false),
    ("LT", "Lituanie", "de la Lituanie", "Lithuania", false),
    ("LU", "Luxembourg", "du Luxembourg", "Luxembourg", false),
    ("LV", "Lettonie", "de la Lettonie", "Latvia", false),
    ("LY", "Libye", "de la Libye", "Libya", false),
    ("MA", "Maroc", "du Maroc", "Morocco", false),
    ("MC", "Monaco", "de Monaco", "Monaco", false),
    ("MD", "Moldavie", "de la Moldavie", "Moldova", false),
    ("ME", "Monténégro", "du Monténégro", "Montenegro", false),
    (
        "MF",
        "Saint-Martin (partie française)",
        "de Saint-Martin (partie française)",
        "Saint Martin (French part)",
        false,
    ),
    ("MG", "Madagascar", "de Madagascar", "Madagascar", false),
    (
        "MH",
        "Îles Marshall",
        "des Îles Marshall",
        "Marshall Islands",
        true,
    ),
    (
        "MK",
        "Macédoine du Nord",
        "du Macédoine du Nord",
        "North Macedonia",
        false,
    ),
    ("ML", "Mali", "du Mali", "Mali", false),
    ("MM", "Birmanie", "de la Birmanie", "Myanmar", false),
    ("MN", "Mongolie", "de la Mongolie", "Mongolia", false),
    ("MO", "Macau", "de Macau", "Macao", false),
    (
        "MP",
        "Îles Mariannes du Nord",
        "des Îles Mariannes du Nord",
        "Northern Mariana Islands",
        true,
    ),
    ("MQ", "Martinique", "de Martinique", "Martinique", false),
    ("MR", "Mauritanie", "de la Mauritanie", "Mauritania", false),
    ("MS", "Montserrat", "de Montserrat", "Montserrat", false),
    ("MT", "Malte", "de Malte", "Malta", false),
    ("MU", "Maurice", "de Maurice", "Mauritius", false),
    ("MV", "Maldives", "des Maldives", "Maldives", true),
    ("MW", "Malawi", "du Malawi", "Malawi", false),
    ("MX", "Mexique", "du Mexique", "Mexico", false),
    ("MY", "Malaisie", "de la Malaisie", "Malaysia", false),
    ("MZ", "Mozambique", "du Mozambique", "Mozambique", false),
    ("NA", "Namibie", "de la Namibie", "Namibia", false),
    (
        "NC",
        "Nouvelle-Calédonie",
        "de Nouvelle-Calédonie",
        "New Caledonia",
        false,
    ),
    ("NE", "Niger", "du Niger", "Niger", false),
    (
        "NF",
        "île Norfolk",
        "des île Norfolk",
        "Norfolk Island",
        false,
    ),
    ("NG", "Nigeria", "du Nigeria", "Nigeria", false),
    ("NI", "Nicaragua", "du Nicaragua", "Nicaragua", false),
    ("NL", "Pays-Bas", "des Pays-Bas", "Netherlands", true),
    ("NO", "Norvège", "de la Norvège", "Norway", false),
    ("NP", "Népal", "du Népal", "Nepal", false),
    ("NR", "Nauru", "de Nauru", "Nauru", false),
    ("NU", "Nioue", "de Nioue", "Niue", false),
    (
        "NZ",
        "Nouvelle-Zélande",
        "de la Nouvelle-Zélande",
        "New Zealand",
        false,
    ),
    ("OM", "Oman", "d’Oman", "Oman", false),
    ("PA", "Panama", "du Panama", "Panama", false),
    ("PE", "Pérou", "du Pérou", "Peru", false),
    (
        "PF",
        "Polynésie française",
        "de Polynésie française",
        "French Polynesia",
        false,
    ),
    (
        "PG",
        "Papouasie-Nouvelle-Guinée",
        "de la Papouasie-Nouvelle-Guinée",
        "Papua New Guinea",
        false,
    ),
    ("PH", "Philippines", "des Philippines", "Philippines", true),
    ("PK", "Pakistan", "du Pakistan", "Pakistan", false),
    ("PL", "Pologne", "de la Pologne", "Poland", false),
    (
        "PM",
        "Saint-Pierre-et-Miquelon",
        "de Saint-Pierre-et-Miquelon",
        "Saint Pierre and Miquelon",
        false,
    ),
    (
        "PN",
        "Îles Pitcairn",
        "des Îles Pitcairn",
        "Pitcairn",
        false,
    ),
    ("PR", "Porto Rico", "de Porto Rico", "Puerto Rico", false),
    ("PS", "Palestine", "de Palestine", "Palestine", true),
    ("PT", "Portugal", "du Portugal", "Portugal", false),
    ("PW", "Palaos", "de Palaos", "Palau", false),
    ("PY", "Paraguay", "du Paraguay", "Paraguay", false),
    ("QA", "Qatar", "de Qatar", "Qatar", false),
    ("RE", "Réunion", "de Réunion", "Réunion", false),
    ("RO", "Roumanie", "de la Roumanie", "Romania", false),
    ("RS", "Serbie", "de la Serbie", "Serbia", false),
    ("RU", "Russie", "de la Russie", "Russia", false),
    ("RW", "Rwanda", "du Rwanda", "Rwanda", false),
    (
        "SA",
        "Arabie saoudite",
        "de l’Arabie saoudite",
        "Saudi Arabia",
        false,
    ),
    ("SB", "Salomon", "des Salomon", "Solomon Islands", true),
    ("SC", "Seychelles", "des Seychelles", "Seychelles", true),
    ("SD", "Soudan", "du Soudan", "Sudan", false),
    ("SE", "Suède", "de la Suède", "Sweden", false),
    ("SG", "Singapour", "de Singapour", "Singapore", false),
    (
        "SH",
        "Sainte-Hélène",
        "de Sainte-Hélène",
        "Saint Helena",
        false,
    ),
    ("SI", "Slovénie", "de la Slovénie", "Slovenia", false),
    (
        "SJ",
        "Svalbard et île Jan Mayen",
        "de Svalbard et île Jan Mayen",
        "Svalbard and Jan Mayen",
        false,
    ),
    ("SK", "Slovaquie", "de la Slovaquie", "Slovakia", false),
    (
        "SL",
        "Sierra Leone",
        "de la Sierra Leone",
        "Sierra Leone",
        false,
    ),
    ("SM", "Saint-Marin", "de Saint-Marin", "San Marino", false),
    ("SN", "Sénégal", "du Sénégal", "Senegal", false),
    ("SO", "Somalie", "de la Somalie", "Somalia", false),
    ("SR", "Surinam", "du Surinam", "Suriname", false),
    (
        "SS",
        "Soudan du Sud",
        "du Soudan du Sud",
        "South Sudan",
        false,
    ),
    (
        "ST",
        "Sao Tomé-et-Principe",
        "de Sao Tomé-et-Principe",
        "Sao Tome and Principe",
        false,
    ),
    ("SV", "Salvador", "du Salvador", "El Salvador", false),
    (
        "SX",
        "Saint-Martin (partie néerlandaise)",
        "de Saint-Martin (partie néerlandaise)",
        "Sint Maarten (Dutch part)",
        false,
    ),
    ("SY", "Syrie", "de la Syrie", "Syria", false),
    ("SZ", "Eswatini", "de l’Eswatini", "Eswatini", false),
    (
        "TC",
        "îles Turques-et-Caïques",
        "des îles Turques-et-Caïques",
        "Turks and Caicos Islands",
        true,
    ),
    ("TD", "Tchad", "du Tchad", "Chad", false),
    (
        "TF",
        "Terres australes françaises",
        "des Terres australes françaises",
        "French Southern Territories",
        true,
    ),
    ("TG", "Togo", "du Togo", "Togo", false),
    ("TH", "Thaïlande", "de la Thaïlande", "Thailand", false),
    ("TJ", "Tadjikistan", "du Tadjikistan", "Tajikistan", false),
    ("TK", "Tokelau", "de Tokelau", "Tokelau", false),
    (
        "TL",
        "Timor oriental",
        "de Timor oriental",
        "Timor-Leste",
        false,
    ),
    (
        "TM",
        "Turkménistan",
        "du Turkménistan",
        "Turkmenistan",
        false,
    ),
    ("TN", "Tunisie", "de la Tunisie", "Tunisia", false),
    ("TO", "Tonga", "de Tonga", "Tonga", false),
    ("TR", "Türkiye", "de la Türkiye", "Türkiye", false),
    (
        "TT",
        "Trinité-et-Tobago",
        "de Trinité-et-Tobago",
        "Trinidad and Tobago",
        false,
    ),
    ("TV", "Tuvalu", "de Tuvalu", "Tuvalu", false),
    ("TW", "Taïwan", "de Taïwan", "Taiwan", false),
    ("TZ", "Tanzanie", "de la Tanzanie", "Tanzania", false),
    ("UA", "Ukraine", "de l’Ukraine", "Ukraine", false),
    ("UG", "Ouganda", "de l’Ouganda", "Uganda", false),
    (
        "UM",
        "Îles mineures éloignées des États-Unis",
        "des Îles mineures éloignées des États-Unis",
        "United States Minor Outlying Islands",
        true,
    ),
    ("US", "États-Unis", "des États-Unis", "United States", true),
    ("UY", "Uruguay", "de l’Uruguay", "Uruguay", false),
    ("UZ", "Ouzbékistan", "de l’Ouzbékistan", "Uzbekistan", false),
    (
        "VA",
        "Saint-Siège (Vatican)",
        "du Saint-Siège",
        "Holy See (Vatican)",
        true,
    ),
    (
        "VC",
        "Saint-Vincent-et-les-Grenadines",
        "de Saint-Vincent-et-les-Grenadines",
        "Saint Vincent and the Grenadines",
        false,
    ),
    ("VE", "Venezuela", "du Venezuela", "Venezuela", false),
    (
        "VG",
        "Îles Vierges britanniques",
        "des Îles Vierges britanniques",
        "British Virgin Islands",
        true,
    ),
    (
        "VI",
        "Îles Vierges des États-Unis",
        "des Îles Vierges des États-Unis",
        "US Virgin Islands",
        true,
    ),
    ("VN", "Viêt Nam", "du Viêt Nam", "Vietnam", false),
    ("VU", "Vanuatu", "de Vanuatu", "Vanuatu", false),
    (
        "WF",
        "Wallis et Futuna",
        "des Wallis et Futuna",
        "Wallis and Futuna",
        false,
    ),
    ("WS", "Samoa", "de Samoa", "Samoa", false),
    ("XK", "Kosovo", "de Kosovo", "Kosovo", false),
    ("YE", "Yémen", "de l’Yémen", "Yemen", false),
    ("YT", "Mayotte", "de Mayotte", "Mayotte", false),
    (
        "ZA",
        "Afrique du Sud",
        "de l’Afrique du Sud",
        "South Africa",
        false,
    ),
    ("ZM", "Zambie", "de la Zambie", "Zambia", false),
    ("ZW", "Zimbabwe", "du Zimbabwe", "Zimbabwe", false),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Country {
        Country::parse(code).expect("code")
    }

    #[test]
    fn every_assigned_code_has_a_name() {
        for code in NAMES.iter().map(|e| e.0) {
            let country = c(code);
            assert_ne!(name(country, Lang::Fr), "?", "{code}");
        }
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        assert_eq!(NAMES.len(), 250);
    }

    #[test]
    fn names_read_as_a_sentence() {
        assert_eq!(law_of(c("US"), Lang::Fr), "des États-Unis");
        assert_eq!(law_of(c("US"), Lang::En), "the United States");
        assert_eq!(law_of(c("IE"), Lang::Fr), "de l’Irlande");
        assert_eq!(law_of(c("JP"), Lang::Fr), "du Japon");
        assert_eq!(law_of(c("CN"), Lang::Fr), "de la Chine");
        assert_eq!(law_of(c("SG"), Lang::Fr), "de Singapour");
        assert_eq!(name(c("KR"), Lang::Fr), "Corée du Sud");
        assert_eq!(in_country(c("FR"), Lang::Fr), "en France");
        assert_eq!(in_country(c("US"), Lang::Fr), "aux États-Unis");
        assert_eq!(in_country(c("JP"), Lang::Fr), "au Japon");
        assert_eq!(in_country(c("SG"), Lang::Fr), "à Singapour");
        assert_eq!(in_country(c("IE"), Lang::Fr), "en Irlande");
        assert_eq!(in_country(c("US"), Lang::En), "in the United States");
        assert_eq!(name(c("DE"), Lang::En), "Germany");
        assert_eq!("en".parse::<Lang>(), Ok(Lang::En));
        assert!("de".parse::<Lang>().is_err());
    }
}
