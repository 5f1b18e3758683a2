//! A phone number as the sandbox takes it (country code + digits), checked once where it enters the simulator:
//! by `POST /users` for a user's own number, and by `POST /phone-code` for another number the user picks.

use crate::error::SimError;

/// A checked phone number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Phone {
    /// Digits only, without the country code (getuserphonenumber's `purePhoneNumber`).
    pub(crate) pure: String,
    /// 1–3 digits, no `+` (getuserphonenumber's `countryCode`).
    pub(crate) country_code: String,
}

impl Phone {
    /// The number, with country code `86` when none is given (the sandbox's users are mainland users unless
    /// told otherwise).
    pub(crate) fn parse(country_code: Option<&str>, number: &str) -> Result<Self, SimError> {
        let country_code = country_code.unwrap_or("86");
        validate_country_code(country_code)?;
        validate_phone(country_code, number)?;
        Ok(Self {
            pure: number.to_owned(),
            country_code: country_code.to_owned(),
        })
    }

    /// `phoneNumber` as WeChat writes it: with `+` and the country code outside mainland China.
    // Guess: community answers show `+852xxxxxxxx` (plus, no space) for Hong Kong; the simulator writes every
    // non-86 number that way.
    pub(crate) fn number(&self) -> String {
        if self.country_code == "86" {
            self.pure.clone()
        } else {
            format!("+{}{}", self.country_code, self.pure)
        }
    }
}

// Guess: WeChat does not say which country codes exist; the simulator accepts any 1–3 digit code without a
// leading zero (the ITU shape).
fn validate_country_code(cc: &str) -> Result<(), SimError> {
    let ok = (1..=3).contains(&cc.len())
        && cc.bytes().all(|b| b.is_ascii_digit())
        && !cc.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(SimError::InvalidCountryCode(cc.to_owned()))
    }
}

fn validate_phone(cc: &str, phone: &str) -> Result<(), SimError> {
    let digits = !phone.is_empty() && phone.bytes().all(|b| b.is_ascii_digit());
    let ok = if cc == "86" {
        digits && phone.len() == 11 && phone.starts_with('1')
    } else {
        digits && (4..=15).contains(&phone.len())
    };
    if ok {
        Ok(())
    } else {
        Err(SimError::InvalidPhoneNumber(phone.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_rules() {
        assert!(validate_phone("86", "13800138000").is_ok());
        assert!(validate_phone("86", "23800138000").is_err());
        assert!(validate_phone("86", "1380013800").is_err());
        assert!(validate_phone("86", "1380013800a").is_err());
        assert!(validate_phone("852", "61234567").is_ok());
        assert!(validate_phone("852", "123").is_err());
        assert!(validate_phone("852", "1234567890123456").is_err());
        assert!(validate_phone("852", "+61234567").is_err());
        assert!(validate_country_code("86").is_ok());
        assert!(validate_country_code("+86").is_err());
        assert!(validate_country_code("086").is_err());
        assert!(validate_country_code("1234").is_err());
        assert!(validate_country_code("").is_err());
    }

    #[test]
    fn parse_defaults_to_86_and_formats_like_wechat() {
        let mainland = Phone::parse(None, "13800138000").unwrap();
        assert_eq!(mainland.country_code, "86");
        assert_eq!(mainland.number(), "13800138000");
        let hong_kong = Phone::parse(Some("852"), "61234567").unwrap();
        assert_eq!(hong_kong.number(), "+85261234567");
        assert_eq!(hong_kong.pure, "61234567");
        assert_eq!(
            Phone::parse(Some("+852"), "61234567"),
            Err(SimError::InvalidCountryCode("+852".into()))
        );
    }
}
