// One time zone for every run, and not UTC: the qr-confirm page shows local time, which a test checks.
process.env.TZ = 'Asia/Shanghai';

module.exports = {
  testEnvironment: 'jsdom',
  testMatch: ['<rootDir>/test/**/*.test.js'],
  setupFilesAfterEnv: ['<rootDir>/test/helpers/no-phone-in-console.js'],
};
