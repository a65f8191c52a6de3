"""The demo corpus's clinical knowledge: concepts, their groups, and what charts say about each (pure data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConceptGroup:
    """A parent node of the concept tree (an organ system or disease family)."""

    code: str
    name: str


@dataclass(frozen=True)
class Concept:
    """A clinical concept that a snippet can assert, negate or leave uncertain.

    ``synonyms`` are every surface form the generator writes for the concept (its own wording,
    abbreviations, variants); a form written in capitals only is matched case-sensitively, any
    other form case-insensitively. ``parent`` is the code of a ``ConceptGroup``.
    """

    code: str
    name: str
    synonyms: tuple[str, ...]
    parent: str


@dataclass(frozen=True)
class Lab:
    """A numeric test: reference interval [low, high] (high None: open above) and an abnormal draw range."""

    short: str
    long: str
    unit: str
    low: float
    high: float | None
    draw_low: float
    draw_high: float
    decimals: int


@dataclass(frozen=True)
class Drug:
    """A drug with the doses, routes and frequencies it is charted with (chart abbreviations)."""

    name: str
    doses: tuple[str, ...]
    routes: tuple[str, ...]
    frequencies: tuple[str, ...]


@dataclass(frozen=True)
class Study:
    """An imaging or cardiac study result; ``supports`` says whether it shows the concept itself."""

    modality: str
    finding: str
    supports: bool = True


@dataclass(frozen=True)
class Profile:
    """What charts say about one concept when they assert it. Strings may hold ``{slots}``."""

    symptoms: tuple[str, ...]
    labs: tuple[Lab, ...]
    lab_notes: tuple[str, ...]
    studies: tuple[Study, ...]
    drugs: tuple[Drug, ...]
    plans: tuple[str, ...]
    statuses: tuple[str, ...]
    treatments: tuple[str, ...]
    courses: tuple[str, ...]
    specialties: tuple[str, ...]
    related: tuple[str, ...]  # concepts that often come with this one (co-morbidity)
    differential: tuple[str, ...]  # concepts a chart rules out or leaves open beside this one


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split("|") if part.strip())


def _drug(name: str, doses: str, routes: str, frequencies: str) -> Drug:
    return Drug(name, _split(doses), _split(routes), _split(frequencies))


GROUPS: tuple[ConceptGroup, ...] = (
    ConceptGroup("CARDIOVASCULAR", "Cardiovascular"),
    ConceptGroup("RENAL", "Renal"),
    ConceptGroup("RESPIRATORY", "Respiratory"),
    ConceptGroup("ENDOCRINE", "Endocrine and metabolic"),
    ConceptGroup("INFECTIOUS", "Infectious"),
    ConceptGroup("HAEMATOLOGIC", "Haematologic"),
    ConceptGroup("HEPATIC", "Hepatic"),
    ConceptGroup("NEUROLOGIC", "Neurologic"),
)

CONCEPTS: tuple[Concept, ...] = (
    Concept(
        "HF",
        "Heart failure",
        (
            "heart failure",
            "CHF",
            "HFrEF",
            "HFpEF",
            "congestive heart failure",
            "acute decompensated heart failure",
            "systolic heart failure",
            "ADHF",
        ),
        "CARDIOVASCULAR",
    ),
    Concept(
        "MI",
        "Myocardial infarction",
        ("MI", "myocardial infarction", "NSTEMI", "STEMI", "heart attack", "type 2 MI", "acute myocardial infarction"),
        "CARDIOVASCULAR",
    ),
    Concept(
        "AF",
        "Atrial fibrillation",
        (
            "atrial fibrillation",
            "AF",
            "afib",
            "A-fib",
            "paroxysmal AF",
            "AF with RVR",
            "paroxysmal atrial fibrillation",
        ),
        "CARDIOVASCULAR",
    ),
    Concept(
        "PE",
        "Pulmonary embolism",
        ("pulmonary embolism", "PE", "pulmonary emboli", "saddle pulmonary embolus", "submassive PE", "bilateral PE"),
        "CARDIOVASCULAR",
    ),
    Concept(
        "CKD",
        "Chronic kidney disease",
        (
            "chronic kidney disease",
            "CKD",
            "CKD stage 3b",
            "CKD stage 4",
            "ESRD",
            "chronic renal insufficiency",
            "CKD 3a",
        ),
        "RENAL",
    ),
    Concept(
        "AKI",
        "Acute kidney injury",
        ("acute kidney injury", "AKI", "acute renal failure", "prerenal AKI", "AKI on admission"),
        "RENAL",
    ),
    Concept(
        "COPD",
        "Chronic obstructive pulmonary disease",
        (
            "COPD",
            "chronic obstructive pulmonary disease",
            "emphysema",
            "AECOPD",
            "COPD exacerbation",
            "chronic bronchitis",
        ),
        "RESPIRATORY",
    ),
    Concept(
        "ASTHMA",
        "Asthma",
        ("asthma", "asthma exacerbation", "reactive airway disease", "status asthmaticus", "persistent asthma"),
        "RESPIRATORY",
    ),
    Concept(
        "T2DM",
        "Type 2 diabetes mellitus",
        (
            "type 2 diabetes",
            "T2DM",
            "DM2",
            "type 2 diabetes mellitus",
            "diabetes mellitus type 2",
            "non-insulin-dependent diabetes",
        ),
        "ENDOCRINE",
    ),
    Concept(
        "DKA",
        "Diabetic ketoacidosis",
        ("DKA", "diabetic ketoacidosis", "ketoacidosis", "euglycemic DKA", "severe DKA"),
        "ENDOCRINE",
    ),
    Concept(
        "HYPOTHYROID",
        "Hypothyroidism",
        (
            "hypothyroidism",
            "Hashimoto thyroiditis",
            "primary hypothyroidism",
            "underactive thyroid",
            "autoimmune hypothyroidism",
        ),
        "ENDOCRINE",
    ),
    Concept(
        "SEPSIS",
        "Sepsis",
        ("sepsis", "septic shock", "severe sepsis", "sepsis with organ dysfunction", "sepsis syndrome"),
        "INFECTIOUS",
    ),
    Concept(
        "PNA",
        "Pneumonia",
        (
            "pneumonia",
            "PNA",
            "CAP",
            "community-acquired pneumonia",
            "aspiration pneumonia",
            "multifocal pneumonia",
            "lobar pneumonia",
        ),
        "INFECTIOUS",
    ),
    Concept(
        "UTI",
        "Urinary tract infection",
        ("urinary tract infection", "UTI", "cystitis", "pyelonephritis", "CAUTI", "complicated UTI"),
        "INFECTIOUS",
    ),
    Concept(
        "ANAEMIA",
        "Anaemia",
        (
            "anemia",
            "anaemia",
            "iron deficiency anemia",
            "IDA",
            "anemia of chronic disease",
            "symptomatic anemia",
            "normocytic anemia",
        ),
        "HAEMATOLOGIC",
    ),
    Concept(
        "CIRRHOSIS",
        "Cirrhosis",
        (
            "cirrhosis",
            "ESLD",
            "end-stage liver disease",
            "alcohol-related cirrhosis",
            "NASH cirrhosis",
            "decompensated cirrhosis",
        ),
        "HEPATIC",
    ),
    Concept(
        "STROKE",
        "Stroke",
        ("stroke", "CVA", "acute ischemic stroke", "cerebrovascular accident", "ischemic stroke", "embolic stroke"),
        "NEUROLOGIC",
    ),
)

# Labs shared by several concepts.
_CR = Lab("Cr", "Creatinine", "mg/dL", 0.6, 1.2, 1.7, 4.9, 1)
_BUN = Lab("BUN", "Blood urea nitrogen", "mg/dL", 7, 20, 28, 96, 0)
_K_HIGH = Lab("K", "Potassium", "mmol/L", 3.5, 5.1, 5.4, 6.7, 1)
_NA_LOW = Lab("Na", "Sodium", "mmol/L", 135, 145, 123, 133, 0)
_WBC = Lab("WBC", "White blood cells", "K/uL", 4.0, 11.0, 13.2, 27.5, 1)
_BNP = Lab("BNP", "B-type natriuretic peptide", "pg/mL", 0, 100, 420, 3900, 0)
_TROP = Lab("hs-TnT", "High-sensitivity troponin T", "ng/L", 0, 14, 48, 2600, 0)
_LDL = Lab("LDL", "LDL cholesterol", "mg/dL", 0, 100, 128, 198, 0)
_A1C = Lab("HbA1c", "Hemoglobin A1c", "%", 4.0, 5.6, 7.3, 12.9, 1)
_INR = Lab("INR", "INR", "", 0.9, 1.1, 1.6, 3.6, 1)
_PCT = Lab("PCT", "Procalcitonin", "ng/mL", 0, 0.5, 1.1, 36.0, 1)
_CRP = Lab("CRP", "C-reactive protein", "mg/L", 0, 10, 32, 210, 0)

NORMAL_LABS: tuple[Lab, ...] = (
    Lab("Na", "Sodium", "mmol/L", 135, 145, 136, 143, 0),
    Lab("K", "Potassium", "mmol/L", 3.5, 5.1, 3.7, 4.8, 1),
    Lab("Cl", "Chloride", "mmol/L", 98, 107, 99, 106, 0),
    Lab("Mg", "Magnesium", "mg/dL", 1.7, 2.2, 1.8, 2.2, 1),
    Lab("Ca", "Calcium", "mg/dL", 8.6, 10.2, 8.7, 10.0, 1),
    Lab("Plt", "Platelets", "K/uL", 150, 400, 165, 380, 0),
    Lab("ALT", "Alanine aminotransferase", "U/L", 7, 56, 12, 44, 0),
    Lab("Glu", "Glucose", "mg/dL", 70, 140, 84, 132, 0),
)

PROFILES: dict[str, Profile] = {
    "HF": Profile(
        symptoms=_split(
            "worsening dyspnea on exertion | three-pillow orthopnea | bilateral lower extremity "
            "edema | a {r_3_7} kg weight gain | paroxysmal nocturnal dyspnea | abdominal "
            "distension and early satiety | increasing fatigue and leg swelling"
        ),
        labs=(_BNP, Lab("NT-proBNP", "NT-proBNP", "pg/mL", 0, 300, 1800, 14500, 0), _NA_LOW, _CR),
        lab_notes=_split(
            "Net negative {d_8_28} L over the last 24 hours | Urine output {d_14_36} L after "
            "IV furosemide | Weight {r_78_118} kg, down {d_8_31} kg from admission"
        ),
        studies=(
            Study("CXR", "cardiomegaly with pulmonary vascular congestion and small bilateral effusions"),
            Study("TTE", "LVEF {r_20_35}% with global hypokinesis and moderate functional MR"),
            Study("TTE", "LVEF 55-60%, grade II diastolic dysfunction and biatrial enlargement"),
            Study("CXR", "interstitial edema with Kerley B lines"),
            Study("Lung US", "diffuse bilateral B-lines"),
            Study("Cardiac MRI", "dilated LV with mid-wall late gadolinium enhancement"),
        ),
        drugs=(
            _drug("furosemide", "20 mg|40 mg|80 mg", "IV|PO", "BID|daily"),
            _drug("torsemide", "20 mg|40 mg", "PO", "daily"),
            _drug("carvedilol", "3.125 mg|6.25 mg|12.5 mg|25 mg", "PO", "BID"),
            _drug("metoprolol succinate", "25 mg|50 mg|100 mg", "PO", "daily"),
            _drug("sacubitril-valsartan", "24-26 mg|49-51 mg", "PO", "BID"),
            _drug("spironolactone", "12.5 mg|25 mg", "PO", "daily"),
            _drug("dapagliflozin", "10 mg", "PO", "daily"),
        ),
        plans=_split(
            "continue IV diuresis with goal net negative 1-2 L daily | strict I/O and daily standing "
            "weights | 2 g sodium and 2 L fluid restriction | uptitrate GDMT as blood pressure allows | "
            "trend BMP twice daily while diuresing | transition to oral torsemide once euvolemic | "
            "cardiology clinic within 7 days | repeat TTE in 3 months"
        ),
        statuses=_split(
            "acute on chronic, decompensated | euvolemic today | improving with diuresis | "
            "chronic, compensated | volume overloaded | NYHA class III"
        ),
        treatments=_split(
            "intravenous furosemide | aggressive diuresis with intravenous loop diuretics | "
            "a furosemide infusion followed by oral torsemide"
        ),
        courses=_split(
            "{pos} dyspnea and leg swelling steadily improved | {pos} weight fell by {r_3_9} kg | "
            "{pos} oxygen requirement resolved by hospital day {r_2_5}"
        ),
        specialties=("cardiology",),
        related=("AF", "CKD", "MI", "T2DM", "AKI"),
        differential=("PE", "MI", "PNA"),
    ),
    "MI": Profile(
        symptoms=_split(
            "substernal chest pressure radiating to the left arm | chest pain with diaphoresis | "
            "exertional chest tightness | epigastric discomfort and nausea | jaw pain and dyspnea | "
            "crushing chest pain at rest"
        ),
        labs=(_TROP, Lab("TnI", "Troponin I", "ng/mL", 0, 0.04, 0.31, 18.5, 2), _LDL),
        lab_notes=_split(
            "ECG with {r_1_3} mm ST elevations in II, III and aVF | ECG with new ST depressions in "
            "V4-V6 | Troponin peaked at {r_800_9200} ng/L"
        ),
        studies=(
            Study("Cath", "{r_80_99}% proximal LAD stenosis treated with a drug-eluting stent"),
            Study("TTE", "new anterior wall hypokinesis, LVEF {r_35_50}%"),
            Study("Cath", "thrombotic occlusion of the mid RCA"),
            Study("TTE", "inferior wall akinesis with preserved RV function"),
        ),
        drugs=(
            _drug("aspirin", "81 mg|325 mg", "PO", "daily"),
            _drug("ticagrelor", "90 mg", "PO", "BID"),
            _drug("atorvastatin", "80 mg", "PO", "daily|QHS"),
            _drug("metoprolol tartrate", "12.5 mg|25 mg", "PO", "BID"),
            _drug("heparin infusion", "12 units/kg/hr", "IV", "continuous"),
            _drug("nitroglycerin", "0.4 mg", "SL", "q5min PRN"),
        ),
        plans=_split(
            "dual antiplatelet therapy for 12 months | high-intensity statin | beta blocker as "
            "tolerated | cardiac rehab referral | repeat TTE in 3 months | trend troponin to peak | "
            "cardiology for left heart cath | smoking cessation counseling"
        ),
        statuses=_split(
            "s/p PCI to LAD | chest pain free since PCI | type 1, s/p PCI to RCA | "
            "medically managed | hemodynamically stable"
        ),
        treatments=_split(
            "emergent PCI with stent placement | dual antiplatelet therapy and a heparin "
            "infusion | cardiac catheterization with stenting of the culprit lesion"
        ),
        courses=_split(
            "{pos} chest pain resolved after revascularization | {pos} troponin trended down | "
            "{pos} ejection fraction was preserved on repeat echocardiogram"
        ),
        specialties=("cardiology",),
        related=("HF", "T2DM", "AF", "CKD"),
        differential=("PE", "AF", "HF"),
    ),
    "AF": Profile(
        symptoms=_split(
            "palpitations | an irregular heartbeat on a home monitor | lightheadedness and "
            "palpitations | dyspnea with a rapid irregular pulse | fatigue and exercise intolerance"
        ),
        labs=(
            Lab("Mg", "Magnesium", "mg/dL", 1.7, 2.2, 1.2, 1.6, 1),
            _INR,
            Lab("K", "Potassium", "mmol/L", 3.5, 5.1, 2.9, 3.4, 1),
        ),
        lab_notes=_split(
            "ECG: irregularly irregular rhythm, ventricular rate {r_118_164} | CHA2DS2-VASc "
            "score {r_2_6} | HAS-BLED score {r_1_3} | TSH within normal limits"
        ),
        studies=(
            Study("ECG", "irregularly irregular narrow-complex rhythm at {r_110_150} bpm"),
            Study("TTE", "left atrial enlargement (LA diameter {d_42_52} cm), LVEF 55%", False),
            Study("Holter", "{r_12_40}% burden of irregular atrial rhythm"),
            Study("TEE", "clear left atrial appendage before cardioversion", False),
        ),
        drugs=(
            _drug("apixaban", "5 mg|2.5 mg", "PO", "BID"),
            _drug("diltiazem", "30 mg|60 mg", "PO", "q6h"),
            _drug("metoprolol tartrate", "25 mg|50 mg", "PO", "BID"),
            _drug("amiodarone", "200 mg", "PO", "daily"),
            _drug("warfarin", "2.5 mg|5 mg", "PO", "daily"),
            _drug("digoxin", "0.125 mg", "PO", "daily"),
        ),
        plans=_split(
            "rate control with metoprolol, goal HR < 110 | anticoagulation with apixaban | TTE and "
            "TSH | cardiology for TEE and cardioversion | continuous telemetry | replete Mg and K | "
            "electrophysiology referral for ablation"
        ),
        statuses=_split(
            "with RVR, rate now controlled | paroxysmal, in sinus rhythm today | persistent | "
            "rate controlled | new onset"
        ),
        treatments=_split(
            "intravenous diltiazem followed by oral metoprolol | rate control and "
            "anticoagulation with apixaban | electrical cardioversion"
        ),
        courses=_split("{pos} heart rate was controlled below 100 | {pos} rhythm converted to sinus rhythm"),
        specialties=("cardiology", "electrophysiology"),
        related=("HF", "STROKE", "HYPOTHYROID", "MI"),
        differential=("HYPOTHYROID", "PE", "STROKE"),
    ),
    "PE": Profile(
        symptoms=_split(
            "sudden-onset pleuritic chest pain | acute dyspnea and tachycardia | hemoptysis | "
            "syncope with hypoxia | left calf swelling followed by dyspnea | dyspnea after a "
            "long-haul flight"
        ),
        labs=(Lab("D-dimer", "D-dimer", "ug/mL FEU", 0, 0.5, 1.4, 9.8, 1), _TROP, _BNP),
        lab_notes=_split(
            "ABG: pH 7.48, pCO2 31 mmHg, pO2 {r_56_68} mmHg on room air | Wells score {r_5_8} | sPESI {r_0_2}"
        ),
        studies=(
            Study("CTA chest", "filling defects in the right lower lobe segmental arteries"),
            Study("CTA chest", "bilateral lobar filling defects with RV/LV ratio {d_11_16}"),
            Study("TTE", "RV dilation with McConnell sign"),
            Study("V/Q scan", "multiple mismatched perfusion defects, high probability"),
            Study("LE duplex", "occlusive thrombus in the left popliteal vein", False),
        ),
        drugs=(
            _drug("heparin infusion", "18 units/kg/hr", "IV", "continuous"),
            _drug("enoxaparin", "1 mg/kg", "SC", "q12h"),
            _drug("apixaban", "10 mg", "PO", "BID"),
            _drug("rivaroxaban", "15 mg", "PO", "BID"),
            _drug("alteplase", "100 mg", "IV", "once"),
        ),
        plans=_split(
            "heparin drip per nomogram | transition to apixaban before discharge | PERT consult for "
            "risk stratification | TTE to assess RV function | bilateral LE duplex | anticoagulation "
            "for at least 3 months | age-appropriate cancer screening"
        ),
        statuses=_split(
            "submassive, hemodynamically stable | low risk, sPESI 0 | intermediate-high risk | "
            "provoked, post-operative | unprovoked"
        ),
        treatments=_split(
            "a heparin infusion followed by apixaban | catheter-directed thrombolysis and "
            "anticoagulation | therapeutic enoxaparin"
        ),
        courses=_split("{pos} oxygen requirement resolved | {pos} tachycardia and chest pain improved"),
        specialties=("pulmonology", "hematology"),
        related=("AF", "HF", "CKD"),
        differential=("PNA", "MI", "HF"),
    ),
    "CKD": Profile(
        symptoms=_split(
            "progressive fatigue and pruritus | decreased appetite and nausea | worsening lower "
            "extremity edema | nocturia | a metallic taste | difficulty concentrating"
        ),
        labs=(
            Lab("Cr", "Creatinine", "mg/dL", 0.6, 1.2, 1.8, 5.6, 1),
            Lab("eGFR", "eGFR", "mL/min/1.73m2", 60, None, 11, 52, 0),
            _K_HIGH,
            Lab("HCO3", "Bicarbonate", "mmol/L", 22, 29, 15, 20, 0),
            Lab("PTH", "Intact PTH", "pg/mL", 15, 65, 110, 420, 0),
            Lab("Phos", "Phosphorus", "mg/dL", 2.5, 4.5, 5.0, 7.8, 1),
        ),
        lab_notes=_split(
            "UACR {r_310_1900} mg/g | Urine protein/creatinine ratio {d_12_48} g/g | Baseline "
            "Cr {d_18_32} over the past year"
        ),
        studies=(
            Study("Renal US", "bilaterally small, echogenic kidneys ({d_82_96} and {d_84_98} cm)"),
            Study("Renal US", "cortical thinning with increased echogenicity bilaterally"),
            Study("CT A/P", "bilateral renal atrophy with scattered simple cysts"),
            Study("Renal US", "enlarged kidneys replaced by innumerable cysts"),
        ),
        drugs=(
            _drug("sevelamer", "800 mg", "PO", "TID with meals"),
            _drug("calcitriol", "0.25 mcg", "PO", "daily"),
            _drug("sodium bicarbonate", "650 mg", "PO", "BID"),
            _drug("losartan", "25 mg|50 mg", "PO", "daily"),
            _drug("dapagliflozin", "10 mg", "PO", "daily"),
            _drug("epoetin alfa", "10,000 units", "SC", "weekly"),
        ),
        plans=_split(
            "renally dose all medications | avoid NSAIDs and IV contrast where feasible | continue "
            "ARB for proteinuria | nephrology referral for dialysis planning | preserve veins of the "
            "left arm | check PTH, phosphorus and vitamin D | dietitian referral for a low-potassium "
            "diet | trend BMP weekly"
        ),
        statuses=_split(
            "stage 3b, at baseline | stage 4, progressing | stage 3a, stable | stage 5, "
            "pre-dialysis | stable, Cr at baseline"
        ),
        treatments=_split(
            "careful volume management and bicarbonate supplementation | adjustment of renally cleared medications"
        ),
        courses=_split("{pos} creatinine remained at baseline | {pos} potassium normalized with dietary changes"),
        specialties=("nephrology",),
        related=("T2DM", "HF", "ANAEMIA", "AKI"),
        differential=("AKI", "UTI", "ANAEMIA"),
    ),
    "AKI": Profile(
        symptoms=_split(
            "decreased urine output | poor oral intake and lightheadedness | nausea and "
            "generalized weakness | vomiting and diarrhea | dark urine and "
            "muscle aches"
        ),
        labs=(Lab("Cr", "Creatinine", "mg/dL", 0.6, 1.2, 1.9, 6.2, 1), _BUN, _K_HIGH),
        lab_notes=_split(
            "FENa 0.{r_2_9}% | Urine sediment with muddy brown granular casts | Baseline Cr "
            "0.{r_7_9} one month ago | Urine Na {r_8_18} mmol/L | CK {r_4200_28000} U/L"
        ),
        studies=(
            Study("Renal US", "normal-sized kidneys with decompressed collecting systems", False),
            Study("Renal US", "moderate bilateral hydronephrosis with a distended bladder"),
            Study("Bladder scan", "post-void residual of {r_450_900} mL"),
            Study("CT A/P", "bilateral perinephric stranding, kidneys otherwise unremarkable", False),
        ),
        drugs=(
            _drug("lactated Ringer's", "1 L|500 mL", "IV", "bolus"),
            _drug("normal saline", "100 mL/hr|125 mL/hr", "IV", "continuous"),
            _drug("calcium gluconate", "1 g", "IV", "once"),
            _drug("sodium zirconium cyclosilicate", "10 g", "PO", "TID"),
            _drug("sodium bicarbonate", "650 mg|1300 mg", "PO", "BID"),
            _drug("patiromer", "8.4 g", "PO", "daily"),
        ),
        plans=_split(
            "hold lisinopril and metformin | avoid nephrotoxins and IV contrast | IV fluid "
            "resuscitation and reassess volume status | strict I/O with Foley catheter | trend "
            "creatinine daily | renally dose antibiotics | nephrology consult if creatinine keeps "
            "rising | obtain urine electrolytes and sediment"
        ),
        statuses=_split(
            "prerenal, improving with fluids | KDIGO stage 2 | creatinine peaked, now "
            "downtrending | oliguric | KDIGO stage 3 | resolving"
        ),
        treatments=_split(
            "intravenous fluids and discontinuation of nephrotoxic medications | volume "
            "resuscitation | relief of obstruction with a Foley catheter"
        ),
        courses=_split("{pos} creatinine returned to near baseline | {pos} urine output recovered within {r_2_4} days"),
        specialties=("nephrology",),
        related=("SEPSIS", "CKD", "HF", "UTI", "DKA"),
        differential=("UTI", "SEPSIS", "CKD"),
    ),
    "COPD": Profile(
        symptoms=_split(
            "increased sputum production and wheezing | worsening dyspnea despite home inhalers "
            "| cough with green sputum | chest tightness and wheeze | dyspnea at rest"
        ),
        labs=(
            Lab("pCO2", "PaCO2", "mmHg", 35, 45, 52, 78, 0),
            Lab("HCO3", "Bicarbonate", "mmol/L", 22, 29, 31, 38, 0),
            Lab("pH", "Venous pH", "", 7.32, 7.42, 7.24, 7.31, 2),
        ),
        lab_notes=_split(
            "Sputum culture with normal flora | Eosinophils 0.{r_3_6} K/uL | FEV1 {r_32_55}% "
            "predicted, FEV1/FVC 0.{r_45_65} | Alpha-1 antitrypsin level normal"
        ),
        studies=(
            Study("CXR", "hyperinflated lungs with flattened hemidiaphragms"),
            Study("CT chest", "upper lobe predominant centrilobular emphysematous change"),
            Study("CXR", "hyperlucent lungs with increased AP diameter"),
            Study("CT chest", "bronchial wall thickening and paraseptal bullae"),
        ),
        drugs=(
            _drug("tiotropium", "18 mcg", "INH", "daily"),
            _drug("prednisone", "40 mg", "PO", "daily"),
            _drug("ipratropium-albuterol", "3 mL", "NEB", "q6h"),
            _drug("fluticasone-salmeterol", "250/50 mcg", "INH", "BID"),
            _drug("azithromycin", "250 mg|500 mg", "PO", "daily"),
        ),
        plans=_split(
            "prednisone 40 mg daily for 5 days | scheduled DuoNebs | titrate O2 to SpO2 88-92% | "
            "pulmonary rehabilitation referral | smoking cessation counseling | ambulatory SpO2 check "
            "before discharge | inhaler technique teaching | influenza and pneumococcal vaccination"
        ),
        statuses=_split(
            "acute exacerbation, improving | GOLD group E | on 2 L home O2, at baseline | "
            "moderate exacerbation | stable on triple therapy"
        ),
        treatments=_split(
            "systemic corticosteroids, nebulized bronchodilators and a short course of "
            "azithromycin | bronchodilators and prednisone | noninvasive ventilation for hypercapnia"
        ),
        courses=_split(
            "{pos} work of breathing improved | {pos} oxygen requirement returned to {pos} home baseline of {r_1_3} L"
        ),
        specialties=("pulmonology",),
        related=("PNA", "HF", "AF"),
        differential=("PE", "PNA", "HF", "ASTHMA"),
    ),
    "ASTHMA": Profile(
        symptoms=_split(
            "wheezing and chest tightness | nocturnal cough | dyspnea after a viral illness | "
            "increased rescue inhaler use | difficulty completing sentences | wheezing after "
            "exposure to cats"
        ),
        labs=(
            Lab("Eos", "Eosinophils", "K/uL", 0.0, 0.5, 0.6, 1.4, 1),
            Lab("IgE", "Total IgE", "IU/mL", 0, 100, 180, 1200, 0),
            Lab("pCO2", "PaCO2", "mmHg", 35, 45, 27, 33, 0),
        ),
        lab_notes=_split(
            "Peak flow {r_150_260} L/min, {r_40_60}% of personal best | Spirometry with "
            "{r_14_28}% FEV1 improvement after bronchodilator | FeNO {r_45_90} ppb"
        ),
        studies=(
            Study("CXR", "mild hyperinflation with peribronchial cuffing"),
            Study("CXR", "clear lungs with mild hyperinflation", False),
            Study("CT chest", "bronchial wall thickening and mosaic attenuation"),
        ),
        drugs=(
            _drug("albuterol", "2 puffs|2.5 mg", "INH|NEB", "q4h PRN"),
            _drug("budesonide-formoterol", "160/4.5 mcg", "INH", "BID"),
            _drug("montelukast", "10 mg", "PO", "QHS"),
            _drug("methylprednisolone", "40 mg|60 mg", "IV", "q12h"),
            _drug("fluticasone", "110 mcg", "INH", "BID"),
        ),
        plans=_split(
            "albuterol nebs q2h then space as tolerated | start inhaled corticosteroid controller | "
            "prednisone burst 40 mg x 5 days | review written action plan | trigger avoidance "
            "counseling | magnesium sulfate 2 g IV once | outpatient spirometry | spacer teaching"
        ),
        statuses=_split(
            "moderate persistent | acute exacerbation, improving | poorly controlled | well "
            "controlled on ICS-LABA | mild intermittent"
        ),
        treatments=_split(
            "nebulized albuterol and systemic corticosteroids | intravenous magnesium and continuous nebulizers"
        ),
        courses=_split("{pos} wheezing resolved | {pos} peak flow improved to {r_75_95}% of personal best"),
        specialties=("pulmonology", "allergy"),
        related=("PNA",),
        differential=("PNA", "PE", "COPD"),
    ),
    "T2DM": Profile(
        symptoms=_split(
            "polyuria and polydipsia | blurred vision | fatigue and unintentional weight loss | "
            "numbness in both feet | a nonhealing foot ulcer | recurrent yeast infections"
        ),
        labs=(
            _A1C,
            Lab("Glu", "Glucose", "mg/dL", 70, 140, 162, 318, 0),
            Lab("UACR", "Urine albumin/creatinine ratio", "mg/g", 0, 30, 38, 290, 0),
        ),
        lab_notes=_split(
            "Urine microalbumin {r_35_280} mg/g | Home fingersticks {r_180_260}-{r_280_340} "
            "mg/dL | C-peptide detectable"
        ),
        studies=(
            Study("Retinal photos", "scattered microaneurysms and dot-blot hemorrhages bilaterally"),
            Study("Foot XR", "vascular calcification of the dorsalis pedis arteries"),
            Study("Foot XR", "soft tissue ulcer at the first metatarsal head", False),
            Study("Arterial duplex", "diffuse tibial artery calcification", False),
        ),
        drugs=(
            _drug("metformin", "500 mg|1000 mg", "PO", "BID"),
            _drug("glipizide", "5 mg", "PO", "daily"),
            _drug("insulin glargine", "12 units|20 units|30 units", "SC", "QHS"),
            _drug("insulin lispro", "sliding scale", "SC", "TID AC"),
            _drug("semaglutide", "0.5 mg|1 mg", "SC", "weekly"),
            _drug("empagliflozin", "10 mg", "PO", "daily"),
        ),
        plans=_split(
            "continue metformin, add empagliflozin | basal-bolus insulin while inpatient | diabetes "
            "education consult | annual dilated eye exam | podiatry referral | fingersticks AC and HS "
            "| repeat HbA1c in 3 months | moderate-intensity statin"
        ),
        statuses=_split(
            "uncontrolled, HbA1c above goal | well controlled | with peripheral neuropathy | "
            "insulin-requiring | at goal"
        ),
        treatments=_split("basal-bolus insulin | initiation of basal insulin and diabetes education"),
        courses=_split(
            "{pos} glucose levels were brought into the 120-180 mg/dL range | {pos} insulin "
            "regimen was simplified before discharge"
        ),
        specialties=("endocrinology",),
        related=("CKD", "MI", "STROKE", "HF", "UTI"),
        differential=("DKA", "CKD"),
    ),
    "DKA": Profile(
        symptoms=_split(
            "nausea, vomiting and abdominal pain | polyuria and polydipsia | "
            "Kussmaul respirations and confusion | fruity breath and lethargy | missed insulin "
            "doses and vomiting"
        ),
        labs=(
            Lab("Glu", "Glucose", "mg/dL", 70, 140, 330, 780, 0),
            Lab("AG", "Anion gap", "mmol/L", 8, 16, 21, 34, 0),
            Lab("HCO3", "Bicarbonate", "mmol/L", 22, 29, 5, 15, 0),
            Lab("pH", "Venous pH", "", 7.32, 7.42, 6.95, 7.24, 2),
            Lab("BHB", "Beta-hydroxybutyrate", "mmol/L", 0, 0.4, 3.1, 9.8, 1),
            _K_HIGH,
        ),
        lab_notes=_split(
            "Serum ketones large | Urine ketones 3+ | Anion gap closed to {r_10_14} after "
            "{r_10_16} hours of insulin | Corrected Na {r_134_142}"
        ),
        studies=(
            Study("CXR", "clear lungs", False),
            Study("CT head", "unremarkable study", False),
            Study("CT A/P", "mild gastric distension, otherwise unremarkable", False),
        ),
        drugs=(
            _drug("insulin infusion", "0.1 units/kg/hr", "IV", "continuous"),
            _drug("potassium chloride", "20 mEq|40 mEq", "IV", "once"),
            _drug("normal saline", "1 L", "IV", "bolus"),
            _drug("D5-1/2NS", "150 mL/hr", "IV", "continuous"),
            _drug("insulin glargine", "18 units|24 units", "SC", "QHS"),
            _drug("insulin lispro", "4 units|6 units", "SC", "TID AC"),
        ),
        plans=_split(
            "insulin drip per protocol | BMP and BHB every 2 hours | add dextrose once glucose < 250 "
            "| replete potassium to keep K > 3.5 | transition to SC insulin once the gap closes | "
            "overlap basal insulin 2 hours before stopping the drip | identify the precipitant | "
            "ICU level of care"
        ),
        statuses=_split("severe, pH below 7.1 | gap closing | resolved, on SC insulin | moderate"),
        treatments=_split(
            "an insulin infusion, aggressive intravenous fluids and potassium repletion | "
            "intravenous insulin and fluids per protocol"
        ),
        courses=_split(
            "{pos} anion gap closed within {r_12_30} hours | {pos} insulin was transitioned to a subcutaneous regimen"
        ),
        specialties=("endocrinology",),
        related=("AKI", "T2DM", "UTI"),
        differential=("SEPSIS", "UTI", "PNA"),
    ),
    "HYPOTHYROID": Profile(
        symptoms=_split(
            "fatigue, cold intolerance and constipation | weight gain and dry skin | hair "
            "thinning | slowed speech and lethargy | hoarseness | low mood and fatigue"
        ),
        labs=(
            Lab("TSH", "TSH", "mIU/L", 0.4, 4.0, 7.8, 48.0, 1),
            Lab("fT4", "Free T4", "ng/dL", 0.8, 1.8, 0.2, 0.7, 1),
            _NA_LOW,
            _LDL,
        ),
        lab_notes=_split(
            "TPO antibodies positive | CK mildly elevated at {r_240_420} U/L | Prior TSH {d_60_190} six weeks ago"
        ),
        studies=(
            Study("Thyroid US", "diffusely enlarged, heterogeneous, hypoechoic gland"),
            Study("Thyroid US", "small atrophic gland with coarse echotexture"),
            Study("TTE", "small pericardial effusion", False),
        ),
        drugs=(
            _drug("levothyroxine", "25 mcg|50 mcg|75 mcg|88 mcg|100 mcg|112 mcg", "PO", "daily"),
            _drug("liothyronine", "5 mcg|10 mcg", "PO", "daily"),
            _drug("levothyroxine injection", "50 mcg|100 mcg", "IV", "daily"),
        ),
        plans=_split(
            "start levothyroxine 1.6 mcg/kg daily | recheck TSH in 6 weeks | take levothyroxine on "
            "an empty stomach | separate from calcium and iron by 4 hours | lower starting dose given "
            "age and CAD | endocrinology referral if TSH stays elevated"
        ),
        statuses=_split("subclinical | primary, on replacement | undertreated | TSH at goal | newly diagnosed"),
        treatments=_split("levothyroxine replacement | cautious titration of levothyroxine"),
        courses=_split("{pos} energy level improved | {pos} sodium normalized"),
        specialties=("endocrinology",),
        related=("AF", "HF", "ANAEMIA"),
        differential=("ANAEMIA", "HF"),
    ),
    "SEPSIS": Profile(
        symptoms=_split(
            "fevers, rigors and confusion | hypotension and tachycardia | fever to 39.{r_1_8} C "
            "with chills | altered mental status and fever | lethargy and poor oral intake with "
            "fever"
        ),
        labs=(_WBC, Lab("Lactate", "Lactate", "mmol/L", 0.5, 2.0, 2.6, 7.9, 1), _PCT, _CR),
        lab_notes=_split(
            "Blood cultures 2/2 bottles with gram-negative rods | Blood cultures growing MSSA | "
            "Lactate cleared to 1.{r_1_9} after fluids | qSOFA {r_2_3}"
        ),
        studies=(
            Study("CT A/P", "{r_3_7} cm rim-enhancing fluid collection in the right lower quadrant", False),
            Study("RUQ US", "distended gallbladder with wall thickening and pericholecystic fluid", False),
            Study("CT chest", "right-sided empyema with enhancing pleura", False),
            Study("CXR", "low lung volumes, lines and tubes in appropriate position", False),
        ),
        drugs=(
            _drug("vancomycin", "1250 mg|1500 mg", "IV", "q12h"),
            _drug("piperacillin-tazobactam", "4.5 g", "IV", "q6h|q8h"),
            _drug("cefepime", "2 g", "IV", "q8h"),
            _drug("meropenem", "1 g", "IV", "q8h"),
            _drug("norepinephrine", "0.05 mcg/kg/min|0.12 mcg/kg/min", "IV", "continuous"),
            _drug("lactated Ringer's", "30 mL/kg", "IV", "bolus"),
            _drug("cefpodoxime", "200 mg", "PO", "BID"),
            _drug("amoxicillin-clavulanate", "875 mg", "PO", "BID"),
        ),
        plans=_split(
            "broad-spectrum antibiotics within the hour | 30 mL/kg crystalloid bolus | trend lactate "
            "q6h | blood cultures x2 before antibiotics | titrate norepinephrine to MAP > 65 | source "
            "control with IR drainage | narrow antibiotics per cultures | ICU evaluation"
        ),
        statuses=_split(
            "hemodynamically improving | on norepinephrine | lactate clearing | off pressors "
            "since yesterday | source identified"
        ),
        treatments=_split(
            "broad-spectrum antibiotics and intravenous fluids | vasopressor support with "
            "norepinephrine and intravenous antibiotics | percutaneous drainage and antibiotics"
        ),
        courses=_split(
            "{pos} blood pressure stabilized and vasopressors were weaned within {r_24_72} hours | "
            "{pos} fever curve trended down | {pos} lactate normalized"
        ),
        specialties=("infectious diseases", "critical care"),
        related=("PNA", "UTI", "AKI"),
        differential=("PNA", "UTI", "PE"),
    ),
    "PNA": Profile(
        symptoms=_split(
            "productive cough with yellow sputum | fever and pleuritic chest pain | shortness of "
            "breath and cough | rust-colored sputum | hypoxia with SpO2 {r_86_91}% on room air | "
            "cough, fever and malaise"
        ),
        labs=(_WBC, _PCT, _CRP),
        lab_notes=_split(
            "Sputum Gram stain with gram-positive diplococci | Urine Streptococcus pneumoniae "
            "antigen positive | Legionella urine antigen pending | CURB-65 score {r_1_3}"
        ),
        studies=(
            Study("CXR", "right lower lobe consolidation with air bronchograms"),
            Study("CXR", "left lower lobe opacity obscuring the hemidiaphragm"),
            Study("CT chest", "multifocal patchy consolidation, greatest in the lower lobes"),
            Study("CXR", "right middle lobe infiltrate with a small parapneumonic effusion"),
            Study("CT chest", "dependent consolidation in the right lower lobe"),
        ),
        drugs=(
            _drug("ceftriaxone", "1 g|2 g", "IV", "daily"),
            _drug("azithromycin", "500 mg", "IV|PO", "daily"),
            _drug("doxycycline", "100 mg", "PO", "BID"),
            _drug("levofloxacin", "750 mg", "PO|IV", "daily"),
            _drug("amoxicillin-clavulanate", "875 mg", "PO", "BID"),
        ),
        plans=_split(
            "ceftriaxone and azithromycin for 5 days | incentive spirometry | supplemental O2 to "
            "keep SpO2 > 92% | blood and sputum cultures | transition to oral antibiotics when "
            "afebrile | repeat CXR in 6-8 weeks | chest physiotherapy"
        ),
        statuses=_split(
            "improving on antibiotics | day 3 of antibiotics | afebrile for 24 hours | "
            "worsening hypoxia | clinically improving"
        ),
        treatments=_split(
            "intravenous ceftriaxone and azithromycin | antibiotics and supplemental oxygen | oral levofloxacin"
        ),
        courses=_split(
            "{pos} oxygen was weaned to room air | {pos} fevers resolved by hospital day {r_2_4} | "
            "{pos} cough gradually improved"
        ),
        specialties=("infectious diseases", "pulmonology"),
        related=("SEPSIS", "COPD", "HF", "ASTHMA"),
        differential=("PE", "HF", "SEPSIS"),
    ),
    "UTI": Profile(
        symptoms=_split(
            "dysuria and urinary frequency | suprapubic pain | flank pain with fever | urinary "
            "urgency and hematuria | new confusion and foul-smelling urine"
        ),
        labs=(_WBC, _CRP),
        lab_notes=_split(
            "UA: positive leukocyte esterase and nitrite, >50 WBC/hpf | Urine culture >100,000 "
            "CFU/mL E. coli | Urine culture growing Klebsiella pneumoniae | Urinalysis with many "
            "bacteria and pyuria"
        ),
        studies=(
            Study("Renal US", "mild right hydronephrosis", False),
            Study("CT A/P", "right perinephric fat stranding and a striated nephrogram"),
            Study("Bladder US", "diffuse bladder wall thickening"),
        ),
        drugs=(
            _drug("nitrofurantoin", "100 mg", "PO", "BID"),
            _drug("ceftriaxone", "1 g", "IV", "daily"),
            _drug("cephalexin", "500 mg", "PO", "q12h|QID"),
            _drug("trimethoprim-sulfamethoxazole", "800-160 mg", "PO", "BID"),
            _drug("ciprofloxacin", "500 mg", "PO", "BID"),
            _drug("fosfomycin", "3 g", "PO", "once"),
        ),
        plans=_split(
            "ceftriaxone pending culture | narrow to cephalexin per sensitivities | remove Foley "
            "catheter | urine culture | encourage oral fluids | total of 7 days of antibiotics | renal "
            "ultrasound if fevers persist"
        ),
        statuses=_split("uncomplicated | catheter-associated | improving on antibiotics | afebrile x 24 h"),
        treatments=_split("intravenous ceftriaxone followed by oral cephalexin | oral nitrofurantoin"),
        courses=_split("{pos} urinary symptoms resolved | {pos} fevers resolved"),
        specialties=("urology", "infectious diseases"),
        related=("SEPSIS", "AKI", "T2DM"),
        differential=("SEPSIS", "AKI"),
    ),
    "ANAEMIA": Profile(
        symptoms=_split(
            "fatigue and exertional dyspnea | pallor and lightheadedness | melena | pica and "
            "brittle nails | palpitations on exertion"
        ),
        labs=(
            Lab("Hgb", "Hemoglobin", "g/dL", 12.0, 16.0, 6.1, 9.8, 1),
            Lab("MCV", "MCV", "fL", 80, 100, 62, 77, 0),
            Lab("Ferritin", "Ferritin", "ng/mL", 30, 400, 3, 18, 0),
        ),
        lab_notes=_split(
            "Iron saturation {r_3_9}% | Reticulocyte index 0.{r_4_9} | Stool guaiac positive | "
            "B12 {r_110_180} pg/mL (L)"
        ),
        studies=(
            Study("CT A/P", "circumferential mass in the ascending colon", False),
            Study("CT A/P", "splenomegaly to {r_14_18} cm", False),
            Study("Pelvic US", "enlarged fibroid uterus", False),
            Study("Capsule endoscopy", "several jejunal angioectasias", False),
        ),
        drugs=(
            _drug("ferrous sulfate", "325 mg", "PO", "daily|every other day"),
            _drug("iron sucrose", "200 mg", "IV", "daily x 5 doses"),
            _drug("packed red blood cells", "1 unit", "IV", "once"),
            _drug("folic acid", "1 mg", "PO", "daily"),
            _drug("cyanocobalamin", "1000 mcg", "IM", "monthly"),
            _drug("pantoprazole", "40 mg", "IV", "BID"),
        ),
        plans=_split(
            "transfuse 1 unit pRBC for Hgb < 7 | iron studies, B12 and folate | IV iron repletion | "
            "GI consult for EGD and colonoscopy | type and screen | trend CBC q12h | hold "
            "anticoagulation pending GI evaluation | oral iron every other day"
        ),
        statuses=_split(
            "iron deficiency, symptomatic | Hgb stable | microcytic | chronic, at baseline Hgb | "
            "improving after transfusion"
        ),
        treatments=_split(
            "transfusion of {r_1_3} units of packed red blood cells and intravenous iron | intravenous iron sucrose"
        ),
        courses=_split("{pos} hemoglobin stabilized around {r_8_10} g/dL | {pos} fatigue improved"),
        specialties=("hematology", "gastroenterology"),
        related=("CKD", "CIRRHOSIS", "HF"),
        differential=("CIRRHOSIS", "CKD", "HYPOTHYROID"),
    ),
    "CIRRHOSIS": Profile(
        symptoms=_split(
            "increasing abdominal girth | confusion and day-night reversal | jaundice and "
            "pruritus | hematemesis | leg swelling and abdominal distension | easy bruising"
        ),
        labs=(
            Lab("T bili", "Total bilirubin", "mg/dL", 0.2, 1.2, 2.1, 9.6, 1),
            Lab("Alb", "Albumin", "g/dL", 3.5, 5.0, 1.8, 2.9, 1),
            _INR,
            Lab("Plt", "Platelets", "K/uL", 150, 400, 46, 118, 0),
            Lab("NH3", "Ammonia", "umol/L", 11, 35, 58, 160, 0),
            _NA_LOW,
        ),
        lab_notes=_split("MELD-Na {r_16_32} | Child-Pugh class C | Paracentesis: SAAG {d_11_24}, PMN {r_40_220}/uL"),
        studies=(
            Study("RUQ US", "nodular liver contour with moderate ascites and splenomegaly"),
            Study("CT A/P", "shrunken nodular liver with a recanalized umbilical vein"),
            Study("Elastography", "liver stiffness {r_18_42} kPa"),
            Study("CT A/P", "large-volume ascites and esophageal varices"),
        ),
        drugs=(
            _drug("lactulose", "20 g", "PO", "TID"),
            _drug("rifaximin", "550 mg", "PO", "BID"),
            _drug("spironolactone", "100 mg", "PO", "daily"),
            _drug("nadolol", "20 mg", "PO", "daily"),
            _drug("octreotide", "50 mcg/hr", "IV", "continuous"),
        ),
        plans=_split(
            "lactulose titrated to 2-3 BMs daily | diagnostic paracentesis | 2 g sodium diet | EGD "
            "for variceal screening | HCC surveillance US every 6 months | hepatology referral for "
            "transplant evaluation | albumin with large-volume paracentesis | alcohol cessation "
            "counseling"
        ),
        statuses=_split(
            "decompensated, with ascites | Child-Pugh B | compensated | with hepatic encephalopathy, improving"
        ),
        treatments=_split("lactulose and rifaximin | large-volume paracentesis with albumin"),
        courses=_split(
            "{pos} mental status returned to baseline | {pos} abdominal distension improved after paracentesis"
        ),
        specialties=("hepatology", "gastroenterology"),
        related=("ANAEMIA", "AKI", "SEPSIS"),
        differential=("SEPSIS", "AKI", "ANAEMIA"),
    ),
    "STROKE": Profile(
        symptoms=_split(
            "acute right-sided weakness and aphasia | left facial droop and dysarthria | sudden "
            "loss of the right visual field | acute vertigo and ataxia | left arm numbness"
        ),
        labs=(_LDL, _A1C, Lab("Glu", "Glucose", "mg/dL", 70, 140, 148, 236, 0)),
        lab_notes=_split(
            "NIHSS {r_3_18} on arrival | Total cholesterol {r_220_290} mg/dL | Telemetry with sinus rhythm"
        ),
        studies=(
            Study("MRI brain", "restricted diffusion in the left MCA territory"),
            Study("CT head", "hypodensity in the right basal ganglia"),
            Study("CTA head and neck", "occlusion of the right M1 segment"),
            Study("MRI brain", "acute infarcts in the left cerebellar hemisphere"),
            Study("CT perfusion", "core infarct of {r_8_40} mL with a large penumbra"),
            Study("Carotid US", "70-79% stenosis of the left ICA", False),
        ),
        drugs=(
            _drug("aspirin", "81 mg|325 mg", "PO", "daily"),
            _drug("clopidogrel", "75 mg", "PO", "daily"),
            _drug("atorvastatin", "40 mg|80 mg", "PO", "daily"),
            _drug("alteplase", "0.9 mg/kg", "IV", "once"),
            _drug("tenecteplase", "0.25 mg/kg", "IV", "once"),
        ),
        plans=_split(
            "permissive hypertension for 24 hours | neuro checks q1h | swallow screen before PO "
            "intake | aspirin and clopidogrel for 21 days | high-intensity statin | telemetry and "
            "echo with bubble study | PT/OT/SLP evaluations | neurology to follow"
        ),
        statuses=_split(
            "left MCA, s/p thrombectomy | acute, deficits stable | aphasia improving | post-thrombolysis day 1"
        ),
        treatments=_split(
            "intravenous thrombolysis followed by mechanical thrombectomy | dual antiplatelet "
            "therapy and a high-intensity statin"
        ),
        courses=_split("{pos} aphasia improved considerably | {pos} arm strength recovered to {r_3_4}/5"),
        specialties=("neurology",),
        related=("AF", "T2DM", "MI"),
        differential=("AF", "MI", "DKA"),
    ),
}

# Conditions, complaints and drugs that are not concepts: context that carries no tag.
BACKGROUND = _split(
    "HTN | hypertension | HLD | hyperlipidemia | GERD | OSA on CPAP | obesity | BPH | "
    "osteoarthritis | depression | gout | CAD s/p PCI | migraine | prostate cancer in remission "
    "| tobacco use disorder | peripheral neuropathy | glaucoma | prior cholecystectomy"
)
# Background conditions and study findings only one sex has: drawn only for a patient of that sex, and
# a mention states the sex as plainly as "he" does (a SEX_GENDER tag).
SEX_SPECIFIC = {
    "BPH": "male",
    "prostate cancer in remission": "male",
    "enlarged fibroid uterus": "female",
}
COMPLAINTS = _split(
    "a mechanical fall | left knee pain | cellulitis of the right leg | abdominal pain | "
    "dizziness | a syncopal episode | nausea and vomiting | low back pain | a forearm laceration "
    "| a painful swollen great toe | a pruritic rash on the trunk"
)
OTHER_DRUGS = (
    _drug("pantoprazole", "40 mg", "PO", "daily"),
    _drug("acetaminophen", "650 mg", "PO", "q6h PRN"),
    _drug("senna", "8.6 mg", "PO", "QHS"),
    _drug("amlodipine", "5 mg|10 mg", "PO", "daily"),
    _drug("sertraline", "50 mg", "PO", "daily"),
    _drug("heparin", "5000 units", "SC", "q8h"),
    _drug("melatonin", "3 mg", "PO", "QHS"),
    _drug("tamsulosin", "0.4 mg", "PO", "QHS"),
    _drug("cholecalciferol", "1000 units", "PO", "daily"),
    _drug("gabapentin", "300 mg", "PO", "TID"),
)
ROUTE_WORDS = {
    "PO": "by mouth",
    "IV": "intravenously",
    "SC": "subcutaneously",
    "INH": "inhaled",
    "NEB": "by nebulizer",
    "SL": "sublingually",
    "IM": "intramuscularly",
}
FREQUENCY_WORDS = {
    "BID": "twice daily",
    "TID": "three times daily",
    "QID": "four times daily",
    "daily": "once daily",
    "QHS": "at bedtime",
    "q6h": "every 6 hours",
    "q8h": "every 8 hours",
    "q12h": "every 12 hours",
    "weekly": "once weekly",
    "TID AC": "before meals",
    "TID with meals": "three times daily with meals",
    "q4h PRN": "every 4 hours as needed",
    "q6h PRN": "every 6 hours as needed",
    "every other day": "every other day",
    "monthly": "monthly",
}

# What each concept of the demo rubric means, as the rubric shows it to raters.
DESCRIPTIONS: dict[str, str] = {
    "CARDIOVASCULAR": "Diseases of the heart and vessels; use when a latent fires on several of them alike.",
    "RENAL": "Diseases of the kidneys; use when a latent fires on acute and chronic kidney disease alike.",
    "RESPIRATORY": "Diseases of the airways and lungs (not infections); use for COPD and asthma alike.",
    "ENDOCRINE": "Diseases of glucose, thyroid and metabolism; use when several fire alike.",
    "INFECTIOUS": "Infections and their systemic response; use when a latent fires on any infection.",
    "HAEMATOLOGIC": "Diseases of the blood.",
    "HEPATIC": "Diseases of the liver.",
    "NEUROLOGIC": "Diseases of the brain and nerves.",
    "HF": "The heart fails to pump enough blood: reduced (HFrEF) or preserved (HFpEF) ejection fraction, "
    "decompensation, congestion treated with diuretics.",
    "MI": "Death of heart muscle from blocked blood flow: STEMI, NSTEMI, type 2 MI, raised troponin.",
    "AF": "Irregularly irregular atrial rhythm, paroxysmal or persistent, with rate or rhythm control and "
    "anticoagulation.",
    "PE": "A clot lodged in the pulmonary arteries, usually from a deep vein; CT angiography, anticoagulation.",
    "CKD": "Kidney function lost over months to years: eGFR stages, ESRD, dialysis.",
    "AKI": "Kidney function lost over hours to days: creatinine rise, reduced urine output, prerenal causes.",
    "COPD": "Chronic airflow limitation (emphysema, chronic bronchitis) and its exacerbations.",
    "ASTHMA": "Reversible airway narrowing with wheeze; exacerbations treated with bronchodilators and steroids.",
    "T2DM": "Diabetes from insulin resistance: HbA1c, metformin, insulin, complications.",
    "DKA": "Ketoacidosis from insulin deficiency: anion gap, ketones, insulin drip, fluids.",
    "HYPOTHYROID": "Underactive thyroid: raised TSH, low free T4, levothyroxine.",
    "SEPSIS": "Organ dysfunction from a dysregulated response to infection: lactate, vasopressors, septic shock.",
    "PNA": "Infection of the lung parenchyma: infiltrate on imaging, cough, fever, antibiotics.",
    "UTI": "Infection of the urinary tract, from cystitis to pyelonephritis and catheter-associated infection.",
    "ANAEMIA": "Low haemoglobin, whatever the cause: iron deficiency, chronic disease, blood loss.",
    "CIRRHOSIS": "Scarred liver with portal hypertension: ascites, varices, encephalopathy.",
    "STROKE": "Brain injury from a blocked or bleeding vessel: focal deficit, imaging, thrombolysis.",
    "UNINTERPRETABLE": "No pattern holds across the top examples and quantile samples.",
    "POLYSEMANTIC": "The latent fires on two or more unrelated concepts.",
    "ARTIFACT": "The latent fires on formatting, boilerplate, punctuation or tokenisation, not on meaning.",
    "DEMOGRAPHICS": "Who the patient is rather than what they have: protected attributes; a latent that tracks "
    "one of them is flagged for bias review whatever else it means.",
    "RACE_ETHNICITY": "Stated race or ethnicity (social history, demographics line); not ancestry-linked disease.",
    "SEX_GENDER": "Stated sex or gender: pronouns with a stated sex, 'male'/'female', 'man'/'woman'.",
    "INSURANCE": "Insurance or socioeconomic status: Medicaid, uninsured, private insurance, housing or income.",
    "AGE_BAND": "The patient's age or age group as stated ('72-year-old', 'elderly', 'in her 30s').",
}

# Protected attributes (issue 12): rubric concepts marked protected, and the attribute part of the corpus's
# `metadata.protected` tags ("SEX_GENDER:female"). A latent tied to one is flagged whatever its label.
PROTECTED_GROUP = ConceptGroup("DEMOGRAPHICS", "Demographics and social factors")
PROTECTED_ATTRIBUTES: tuple[ConceptGroup, ...] = (
    ConceptGroup("RACE_ETHNICITY", "Race/ethnicity"),
    ConceptGroup("SEX_GENDER", "Sex/gender"),
    ConceptGroup("INSURANCE", "Insurance/socioeconomic status"),
    ConceptGroup("AGE_BAND", "Age band"),
)
