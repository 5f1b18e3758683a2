const auth = require('./utils/auth');

App({
  globalData: {
    // The silent login started at launch; the login page takes it over (and clears it) so the launch does not
    // run twice.
    launch: null,
  },

  onLaunch() {
    this.globalData.launch = auth.launch();
  },
});
