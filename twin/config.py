"""Nameplate values and model parameters of the twin's plant.

Defaults are the performance model's design hall (:class:`perfmodel.whatif.PlantState`,
which describes ``twin/site.yaml``); :meth:`PlantConfig.from_site` overlays the site's
``rated`` maps, so a site file with other nameplates gives a plant to match, and then the
twin's plant file (:mod:`twin.plantspec`, default ``twin/plant.yaml``): how the real
equipment departs from those nameplates and from the catalogue curves. The nameplate
fields stay the nameplate (what the BMS and the agent know); the ``*_factor`` fields and
``chiller_curves`` are the plant's own truth, applied where the physics uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from connectors.site import Site
from perfmodel.curves_data import DEFAULT_CHILLER
from perfmodel.idf import ChillerEIR
from perfmodel.whatif import PlantState
from twin.plantspec import PlantChoice, resolve_plant

_PS = PlantState()


@dataclass
class PlantConfig:
    """Nameplate values and model parameters.

    Defaults are the performance model's design hall (:class:`perfmodel.whatif.PlantState`);
    :meth:`from_site` overlays the site's ``rated`` maps.
    """

    gpus: int = int(_PS.gpus)
    gpu_rated_kw: float = _PS.gpu_rated_kw
    gpu_idle_share: float = 0.3  # cluster power at idle / rated (perfmodel.liquid default)
    liquid_fraction: float = _PS.liquid_fraction
    throttle_temp_c: float = _PS.gpu_throttle_c
    r_th_k_per_w: float = _PS.r_th_k_per_w
    ups_capacity_kw: float = _PS.ups_capacity_kw
    battery_kwh: float = _PS.battery_kwh
    battery_bus_v: float = _PS.battery_bus_v
    battery_rated_hours: float = _PS.battery_rated_hours
    battery_peukert: float = _PS.battery_peukert
    tx_rated_kva: float = _PS.tx_rated_kva
    tx_nl_kw: float = _PS.tx_no_load_kw
    tx_ll_kw: float = _PS.tx_load_loss_kw
    power_factor: float = _PS.power_factor
    pdu_rated_kw: float = _PS.pdu_rated_kw
    pdu_loss_fraction: float = _PS.pdu_loss_fraction
    chiller_cap_kw: float = _PS.chiller_capacity_kw
    chiller_cop: float = _PS.chiller_cop
    chiller_chw_flow_ls: float = _PS.chw_flow_design_per_chiller_ls
    chiller_cw_flow_ls: float = _PS.cw_flow_design_per_chiller_ls
    tower_cap_kw: float = _PS.tower_capacity_kw
    tower_fan_kw: float = _PS.tower_fan_rated_kw
    tower_approach_c: float = _PS.tower_design_approach_k
    tower_design_wb_c: float = _PS.tower_design_wetbulb_c
    chw_pump_flow_ls: float = _PS.chw_pump_design_flow_ls
    chw_pump_kw: float = _PS.chw_pump_rated_kw
    cw_pump_flow_ls: float = _PS.cw_pump_design_flow_ls
    cw_pump_kw: float = _PS.cw_pump_rated_kw
    crah_fan_kw: float = _PS.crah_fan_rated_kw
    crah_airflow_m3s: float = _PS.crah_airflow_design_m3s
    crah_coil_approach_c: float = _PS.crah_coil_approach_k
    server_dt_k: float = _PS.server_delta_t_k
    recirculation_base: float = _PS.recirculation_base
    cdu_flow_ls: float = _PS.cdu_design_flow_ls
    cdu_pump_kw: float = _PS.cdu_pump_rated_kw
    cdu_approach_c: float = _PS.cdu_hx_approach_k
    fouling_approach_k: float = 6.0  # condenser approach added at fouling 1.0
    # the plant's own truth against its nameplate (twin.plantspec; 1.0 = the catalogue)
    chiller_curves: ChillerEIR = field(default=DEFAULT_CHILLER, repr=False)
    chiller_curves_name: str = DEFAULT_CHILLER.name
    chiller_cap_factor: float = 1.0
    chiller_cop_factor: float = 1.0
    tower_air_factor: float = 1.0
    chw_pump_flow_factor: float = 1.0
    chw_pump_power_factor: float = 1.0
    cw_pump_flow_factor: float = 1.0
    cw_pump_power_factor: float = 1.0

    @classmethod
    def from_site(cls, site: Site | None, plant: PlantChoice = None) -> PlantConfig:
        """Nameplates from ``site``, then the plant file's departures from them (``plant``:
        a :class:`~twin.plantspec.PlantSpec`, 'catalogue', a path, or None for the default)."""
        cfg = cls._nameplates(site)
        spec = resolve_plant(plant)
        ch = spec.chiller.eir()
        return replace(
            cfg,
            chiller_curves=ch,
            chiller_curves_name=f"{ch.name} (rated at {spec.chiller.rating_point_c})"
            if spec.chiller.rating_point_c
            else ch.name,
            chiller_cap_factor=spec.chiller.capacity_factor,
            chiller_cop_factor=spec.chiller.cop_factor,
            tower_air_factor=spec.tower.air_flow_factor,
            chw_pump_flow_factor=spec.pumps.chw.flow_factor,
            chw_pump_power_factor=spec.pumps.chw.power_factor,
            cw_pump_flow_factor=spec.pumps.cw.flow_factor,
            cw_pump_power_factor=spec.pumps.cw.power_factor,
        )

    @classmethod
    def _nameplates(cls, site: Site | None) -> PlantConfig:
        cfg = cls()
        if site is None:
            return cfg
        rated = {eq.id: eq.rated for eq in site.equipment}
        for eq, key, attr in (
            ("gpu", "gpus", "gpus"),
            ("gpu", "rated_power_kw", "gpu_rated_kw"),
            ("gpu", "throttle_temp_c", "throttle_temp_c"),
            ("gpu", "liquid_fraction", "liquid_fraction"),
            ("ups_1", "capacity_kw", "ups_capacity_kw"),
            ("ups_1", "battery_kwh", "battery_kwh"),
            ("tx_1", "rated_kva", "tx_rated_kva"),
            ("tx_1", "no_load_loss_kw", "tx_nl_kw"),
            ("tx_1", "load_loss_kw", "tx_ll_kw"),
            ("chiller_1", "capacity_kw", "chiller_cap_kw"),
            ("chiller_1", "cop_rated", "chiller_cop"),
            ("chiller_1", "design_chw_flow_ls", "chiller_chw_flow_ls"),
            ("chiller_1", "design_cw_flow_ls", "chiller_cw_flow_ls"),
            ("ct_1", "capacity_kw", "tower_cap_kw"),
            ("ct_1", "fan_rated_kw", "tower_fan_kw"),
            ("ct_1", "design_approach_c", "tower_approach_c"),
            ("ct_1", "design_wet_bulb_c", "tower_design_wb_c"),
            ("chw_pump_1", "design_flow_ls", "chw_pump_flow_ls"),
            ("chw_pump_1", "rated_kw", "chw_pump_kw"),
            ("cw_pump_1", "design_flow_ls", "cw_pump_flow_ls"),
            ("cw_pump_1", "rated_kw", "cw_pump_kw"),
            ("crah_1", "fan_rated_kw", "crah_fan_kw"),
            ("crah_1", "airflow_m3s", "crah_airflow_m3s"),
            ("cdu_1", "design_flow_ls", "cdu_flow_ls"),
            ("cdu_1", "pump_rated_kw", "cdu_pump_kw"),
            ("cdu_1", "r_th_k_per_w", "r_th_k_per_w"),
        ):
            if key in rated.get(eq, {}):
                setattr(cfg, attr, type(getattr(cfg, attr))(rated[eq][key]))
        return cfg

    @property
    def chw_flow_ls(self) -> float:
        """The CHW pump's true flow at full speed (L/s)."""
        return self.chw_pump_flow_ls * self.chw_pump_flow_factor

    @property
    def cw_flow_ls(self) -> float:
        """The CW pump's true flow at full speed (L/s)."""
        return self.cw_pump_flow_ls * self.cw_pump_flow_factor

    def plant_state(self) -> PlantState:
        """The performance model's state with this configuration's ratings (nameplates only:
        the catalogue model, whatever the plant's own factors)."""
        return replace(
            _PS,
            gpus=float(self.gpus), gpu_rated_kw=self.gpu_rated_kw,
            liquid_fraction=self.liquid_fraction, gpu_throttle_c=self.throttle_temp_c,
            r_th_k_per_w=self.r_th_k_per_w, ups_capacity_kw=self.ups_capacity_kw,
            battery_kwh=self.battery_kwh, tx_rated_kva=self.tx_rated_kva,
            tx_no_load_kw=self.tx_nl_kw, tx_load_loss_kw=self.tx_ll_kw,
            chiller_capacity_kw=self.chiller_cap_kw, chiller_cop=self.chiller_cop,
            chw_flow_design_per_chiller_ls=self.chiller_chw_flow_ls,
            cw_flow_design_per_chiller_ls=self.chiller_cw_flow_ls,
            tower_capacity_kw=self.tower_cap_kw, tower_fan_rated_kw=self.tower_fan_kw,
            tower_design_approach_k=self.tower_approach_c,
            tower_design_wetbulb_c=self.tower_design_wb_c,
            chw_pump_design_flow_ls=self.chw_pump_flow_ls, chw_pump_rated_kw=self.chw_pump_kw,
            cw_pump_design_flow_ls=self.cw_pump_flow_ls, cw_pump_rated_kw=self.cw_pump_kw,
            crah_fan_rated_kw=self.crah_fan_kw, crah_airflow_design_m3s=self.crah_airflow_m3s,
            cdu_design_flow_ls=self.cdu_flow_ls, cdu_pump_rated_kw=self.cdu_pump_kw,
        )  # fmt: skip
