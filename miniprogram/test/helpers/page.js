// miniprogram-simulate renders components only: a page written with Page() is loaded as a component whose
// methods are the page's functions, and its lifecycle (onLoad, onShow) is called by the test.
const path = require('path');
const simulate = require('miniprogram-simulate');

const ROOT = path.resolve(__dirname, '../..');

global.Page = (def) => {
  const data = def.data || {};
  const methods = {};
  Object.keys(def).forEach((k) => {
    if (typeof def[k] === 'function') methods[k] = def[k];
  });
  global.Component({ data, methods });
};

function renderPage(pagePath, { app = { globalData: {} } } = {}) {
  global.getApp = () => app;
  const id = simulate.load(path.join(ROOT, pagePath), 'page', { rootPath: ROOT });
  const page = simulate.render(id);
  page.attach(document.createElement('parent-wrapper'));
  return page;
}

module.exports = { ROOT, renderPage, simulate };
