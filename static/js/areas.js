// Area lists that narrow as one chooses: province → district → subdistrict (geothai, CC-BY-4.0),
// read from the kiosk's own /register/areas.json, never from the internet. Every
// <fieldset data-areas="URL"> with selects named province, district and subdistrict is served;
// without this script the lists already hold the chosen province's districts and district's
// subdistricts (rendered by the page).
(function () {
  "use strict";
  const groups = document.querySelectorAll("fieldset[data-areas]");
  if (!groups.length) return;
  let loading = null;

  function areas(url) {
    loading = loading || fetch(url, {credentials: "same-origin"}).then((r) => r.json());
    return loading;
  }

  function fill(select, items, blank, english) {
    const kept = select.value;
    select.replaceChildren(new Option(blank, ""));
    for (const [code, th, en] of items) {
      select.add(new Option(english ? `${th} (${en})` : th, code, false, code === kept));
    }
  }

  function find(items, code) {
    return (items || []).find((item) => item[0] === code);
  }

  function serve(group) {
    const pick = (name) => group.querySelector(`select[name="${name}"]`);
    const [province, district, subdistrict] = ["province", "district", "subdistrict"].map(pick);
    const blank = group.dataset.blank || "";
    const english = group.dataset.lang === "en";
    province.addEventListener("change", async () => {
      const all = await areas(group.dataset.areas);
      const chosen = find(all, province.value);
      fill(district, chosen ? chosen[3] : [], blank, english);
      fill(subdistrict, [], blank, english);
    });
    district.addEventListener("change", async () => {
      const all = await areas(group.dataset.areas);
      const chosen = find(find(all, province.value)?.[3], district.value);
      fill(subdistrict, chosen ? chosen[3] : [], blank, english);
    });
  }

  groups.forEach(serve);
})();
