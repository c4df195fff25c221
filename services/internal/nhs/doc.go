// Package nhs is the one home of the rules for the two patient identifiers
// dmic reads: the NHS number and the postcode. Validation judges records by
// these rules, de-identification derives pseudonyms and areas by them, the
// reference data is keyed by them and the synthetic data generator makes
// numbers that pass them; none of them keeps a copy.
//
// It is a domain package: the standard library only, no Kafka, ClickHouse,
// gRPC or dmic platform import. Every function here is a function of its
// arguments, allocates nothing (except NormalisePostcode's result when the
// input is not already in canonical form) and never puts a value in an
// error or a log.
//
// # NHS number
//
// Source: NHS Data Dictionary, "NHS Number" (the data element and its
// Modulus 11 check), and the domain brief (docs: commissioning-data.md,
// "NHS number Modulus 11").
//
//   - Form: exactly 10 ASCII digits (the Data Dictionary format n10).
//     Nothing is tolerated around or between the digits: no spaces, hyphens
//     or tabs ("943 476 5919" is not an NHS number here). This is what
//     validation has always required of a submitted number (rule NHS-001);
//     de-identification used to strip spaces and hyphens first, but every
//     specification refuses such a number as an error before it reaches
//     de-identification, so the two now agree on one form.
//   - Check digit (Modulus 11): weight digits 1 to 9 by 10, 9, ..., 2, sum,
//     and take 11 - (sum mod 11). 11 is read as 0; 10 means that no number
//     with these nine digits is valid. The number is valid when the result
//     equals digit 10.
//   - Not one digit repeated: 0000000000, 1111111111, ... pass the check
//     digit but are not NHS numbers.
//
// # Postcode
//
// Source: the Royal Mail postcode format as set out in the domain brief
// ("Postcode format"), and the ONS Postcode Directory (ONSPD, ONS; contains
// Royal Mail data) whose pcd, pcd2 and pcds forms the reference data holds
// (shared reference README, file 10). Pseudo-postcodes: the CDS POSTCODE OF
// USUAL ADDRESS (domain brief, section 3) and NHS England's Commissioner
// Assignment Method 2025/26 guidance, Appendix H (reference file 19).
//
// One tolerance, for every caller (validate's format rule and its rewrite,
// de-identification's lookup, the reference data's keys):
//
//   - Case is ignored, and spaces and tabs anywhere are ignored ("sw1a1aa",
//     " SW1A  1AA ", the 7-character pcd and 8-character pcd2 forms).
//   - What is left must be 5 to 7 ASCII letters and digits; any other
//     character (a hyphen, a full stop, a non-ASCII letter) is refused, not
//     dropped.
//   - The last three are the inward code, digit + two letters, the letters
//     not C, I, K, M, O or V. The rest is the outward code: A9, A99, A9A,
//     AA9, AA99 or AA9A, its first letter not Q, V or X and a second letter
//     not I, J or Z.
//   - Special cases: GIR 0AA, and the pseudo-postcodes ZZ99 + digit +
//     letter + Z ("ZZ99 nXZ": ZZ99 3VZ no fixed abode, ZZ99 3WZ not known,
//     ZZ99 6CZ India, ...), whose inward letters may break the rules above.
//     Every pseudo-postcode in the CDS and CAM lists ends in Z.
//   - The canonical form is upper case with one space before the inward
//     code ("SW1A 1AA", the ONSPD pcds form).
//
// It does not say a postcode exists: that is the reference data's question.
// Before this package, the reference data and de-identification used a
// lenient normalisation (5 to 7 letters and digits, inward digit + two
// letters) while validation used the rules above, so a national record
// whose malformed postcode validation only warned about was still given a
// postcode sector and looked up; now a postcode validation calls malformed
// is "postcode invalid" to de-identification too.
package nhs
